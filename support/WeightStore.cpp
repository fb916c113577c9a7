//===- WeightStore.cpp - Weights kept in files, mapped on demand ------------===//
#include "support/WeightStore.h"

#include "support/Safetensors.h"

#include <sys/mman.h>
#include <unistd.h>

#include <vector>

namespace peft {

namespace {
class SafetensorsSource : public WeightSource {
public:
  explicit SafetensorsSource(std::unique_ptr<SafetensorsFile> file)
      : file(std::move(file)) {}
  const TensorView *find(llvm::StringRef name) const override {
    return file->find(name);
  }

private:
  std::unique_ptr<SafetensorsFile> file;
};

std::vector<std::pair<std::string, WeightStore::Opener>> &openers() {
  static std::vector<std::pair<std::string, WeightStore::Opener>> registered = {
      {".safetensors",
       [](llvm::StringRef path) -> llvm::Expected<std::unique_ptr<WeightSource>> {
         auto file = SafetensorsFile::open(path);
         if (!file)
           return file.takeError();
         return std::make_unique<SafetensorsSource>(std::move(*file));
       }}};
  return registered;
}
} // namespace

void WeightStore::registerFormat(llvm::StringRef extension, Opener opener) {
  openers().emplace_back(extension.str(), std::move(opener));
}

void WeightStore::adopt(llvm::StringRef path, std::unique_ptr<WeightSource> source) {
  std::lock_guard<std::mutex> lock(mutex);
  sources[path] = std::move(source);
}

llvm::Expected<WeightSource *> WeightStore::open(llvm::StringRef path) {
  std::lock_guard<std::mutex> lock(mutex);
  if (auto found = sources.find(path); found != sources.end())
    return found->second.get();
  for (auto &[extension, opener] : openers()) {
    if (!path.ends_with(extension))
      continue;
    auto source = opener(path);
    if (!source)
      return source.takeError();
    return (sources[path] = std::move(*source)).get();
  }
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 path + ": no reader for this kind of weight file");
}

void dropMappedPages(const uint8_t *data, uint64_t size) {
  static const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) & ~(page - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(data) + size) & ~(page - 1);
  if (end > begin)
    madvise(reinterpret_cast<void *>(begin), end - begin, MADV_DONTNEED);
}

void WeightStore::release(llvm::StringRef file, llvm::StringRef name) {
  std::lock_guard<std::mutex> lock(mutex);
  if (auto found = sources.find(file); found != sources.end())
    found->second->release(name);
}

llvm::Expected<TensorView> WeightStore::lookup(llvm::StringRef file,
                                               llvm::StringRef name) {
  auto source = open(file);
  if (!source)
    return source.takeError();
  if (const TensorView *view = (*source)->find(name))
    return *view;
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 file + ": no tensor named '" + name + "'");
}

} // namespace peft
