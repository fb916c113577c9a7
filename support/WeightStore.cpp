//===- WeightStore.cpp - Weights kept in files, mapped on demand ------------===//
#include "support/WeightStore.h"

#include "support/Safetensors.h"

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
