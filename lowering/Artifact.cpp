//===- Artifact.cpp - Describe and package a compiled entry -----------------===//
#include "lowering/Artifact.h"

#include "dialects/peft/PeftDialect.h"
#include "lowering/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "support/Safetensors.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <cstring>
#include <map>

using namespace mlir;

namespace peft {

static llvm::Error artifactError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// A tensor of the entry's signature; `attrs` may name an unsigned dtype that
/// the signless IR type cannot tell.
static llvm::Expected<ManifestTensor> describeTensor(Type type, StringRef name,
                                                    DictionaryAttr attrs) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  std::optional<DType> dtype = tensor ? dtypeOf(tensor.getElementType()) : std::nullopt;
  if (auto declared = attrs ? attrs.getAs<StringAttr>(kDTypeAttr) : StringAttr())
    dtype = parseDType(declared.getValue());
  if (!dtype)
    return artifactError("entry tensor '" + name + "' has a type the runtime cannot pass");
  ManifestTensor described{name.str(), dtypeName(*dtype).str(), {}};
  for (int64_t size : tensor.getShape())
    described.shape.push_back(ShapedType::isDynamic(size) ? -1 : size);
  return described;
}

static std::string nameOf(DictionaryAttr attrs, StringRef fallback) {
  auto name = attrs ? attrs.getAs<StringAttr>(kTensorNameAttr) : StringAttr();
  return name ? name.str() : fallback.str();
}

/// The layout a `peft.panels` argument attribute describes.
static std::optional<PanelLayout> panelLayoutOf(DictionaryAttr attr) {
  auto of = attr.getAs<StringAttr>("of");
  auto tile = attr.getAs<IntegerAttr>("tile");
  auto transposed = attr.getAs<BoolAttr>("transposed");
  auto shape = attr.getAs<DenseI64ArrayAttr>("shape");
  if (!of || !tile || !transposed || !shape || tile.getInt() < 1 || shape.size() < 2 ||
      (shape.size() != 2 && !transposed.getValue()))
    return std::nullopt;
  return PanelLayout{of.str(), tile.getInt(), transposed.getValue(),
                     std::vector<int64_t>(shape.asArrayRef().begin(), shape.asArrayRef().end())};
}

llvm::Expected<Manifest> describeEntry(func::FuncOp entry) {
  Manifest manifest;
  for (unsigned i = 0; i < entry.getNumArguments(); ++i) {
    DictionaryAttr attrs = entry.getArgAttrDict(i);
    auto weightName = attrs ? attrs.getAs<StringAttr>(kWeightNameAttr) : StringAttr();
    auto tensor = describeTensor(entry.getArgument(i).getType(),
                                 weightName ? weightName.getValue()
                                            : StringRef(nameOf(attrs, "input" + std::to_string(i))),
                                 attrs);
    if (!tensor)
      return tensor.takeError();
    if (auto dimNames = attrs ? attrs.getAs<ArrayAttr>(kDimNamesAttr) : ArrayAttr())
      for (Attribute name : dimNames)
        tensor->dimNames.push_back(cast<StringAttr>(name).str());
    if (auto bound = attrs ? attrs.getAs<IntegerAttr>(kIndexBoundAttr) : IntegerAttr())
      tensor->indexBound = bound.getInt();
    if (auto slots = attrs ? attrs.getAs<IntegerAttr>(kAdapterSlotsAttr) : IntegerAttr())
      tensor->adapterSlots = slots.getInt();
    if (auto panels = attrs ? attrs.getAs<DictionaryAttr>(kWeightPanelsAttr) : DictionaryAttr()) {
      std::optional<PanelLayout> layout = panelLayoutOf(panels);
      if (!layout || tensor->dtype != "F32" || layout->packedShape() != tensor->shape)
        return artifactError("weight '" + tensor->name + "' has a malformed " +
                             kWeightPanelsAttr + " attribute");
      tensor->panels = std::move(layout);
    }
    (weightName ? manifest.weights : manifest.inputs).push_back(*tensor);
  }
  for (unsigned i = 0; i < entry.getNumResults(); ++i) {
    auto tensor = describeTensor(entry.getResultTypes()[i],
                                 nameOf(entry.getResultAttrDict(i), "output" + std::to_string(i)),
                                 entry.getResultAttrDict(i));
    if (!tensor)
      return tensor.takeError();
    manifest.outputs.push_back(*tensor);
  }
  return manifest;
}

void embedSignature(ModuleOp module, const Manifest &manifest) {
  std::string value = manifest.signature();
  value.push_back('\0');
  MLIRContext *context = module.getContext();
  context->getOrLoadDialect<LLVM::LLVMDialect>();
  auto type = LLVM::LLVMArrayType::get(IntegerType::get(context, 8), value.size());
  auto builder = OpBuilder::atBlockEnd(module.getBody());
  LLVM::GlobalOp::create(builder, module.getLoc(), type, /*isConstant=*/true,
                         LLVM::Linkage::External, manifest.entry + "_signature",
                         builder.getStringAttr(value));
}

namespace {

/// One weight argument of the entry, as the weights file stores it.
struct EntryWeight {
  unsigned argument;
  StringAttr name, key, file;
  ElementsAttr value;
  RankedTensorType type;             ///< The argument's type.
  std::optional<PanelLayout> layout; ///< Packed: read as stored, then packed.
};

} // namespace

llvm::Error writeEntryWeights(func::FuncOp entry, StringRef path) {
  // The layout first, from the types alone; then each weight read (packed if
  // it is) and written in turn, its file's pages let go after it: the peak
  // memory is one weight, not all of them.
  std::map<std::string, EntryWeight> weights;
  std::map<std::string, TensorView> layout;
  for (unsigned i = 0; i < entry.getNumArguments(); ++i) {
    DictionaryAttr attrs = entry.getArgAttrDict(i);
    auto name = attrs ? attrs.getAs<StringAttr>(kWeightNameAttr) : StringAttr();
    if (!name)
      continue;
    EntryWeight weight{i,
                       name,
                       attrs.getAs<StringAttr>(kWeightKeyAttr),
                       attrs.getAs<StringAttr>(kWeightFileAttr),
                       attrs.getAs<ElementsAttr>(kWeightValueAttr),
                       cast<RankedTensorType>(entry.getArgument(i).getType()),
                       std::nullopt};
    auto panels = attrs.getAs<DictionaryAttr>(kWeightPanelsAttr);
    weight.layout = panels ? panelLayoutOf(panels) : std::nullopt;
    if (panels && !weight.layout)
      return artifactError("weight '" + name.getValue() + "' has a malformed " +
                           kWeightPanelsAttr + " attribute");
    std::optional<DType> dtype = dtypeOf(weight.type.getElementType());
    if (!dtype)
      return artifactError("weight '" + name.getValue() + "' has an unsupported element type");
    if (weight.layout && *dtype != DType::F32)
      return artifactError("weight '" + name.getValue() + "' is packed but not F32");
    // Stored as the manifest describes it: unsigned weights are signless in
    // the IR, and the bits are the same.
    TensorView stored{*dtype, std::vector<int64_t>(weight.type.getShape()), nullptr, 0};
    stored.byteSize = stored.numElements() * dtypeBits(*dtype) / 8;
    if (!layout.emplace(name.str(), stored).second)
      return artifactError("two different weights are both named '" + name.getValue() + "'");
    weights.emplace(name.str(), weight);
  }
  MLIRContext *context = entry.getContext();
  WeightStore &store = context->getOrLoadDialect<PeftDialect>()->getWeightStore();
  return writeSafetensors(path, layout, [&](const std::string &name, llvm::raw_ostream &os) -> llvm::Error {
    const EntryWeight &weight = weights.at(name);
    auto storedType =
        weight.layout ? RankedTensorType::get(weight.layout->sourceShape,
                                              weight.type.getElementType())
                      : weight.type;
    std::vector<uint8_t> storage;
    StringRef key = (weight.key ? weight.key : weight.name).getValue();
    auto view = readWeightBytes(context, storedType, key, weight.file, weight.value, storage);
    if (!view)
      return view.takeError();
    if (weight.layout) {
      std::vector<float> packed(numElements(weight.layout->packedShape()));
      std::vector<float> source(view->numElements());
      std::memcpy(source.data(), view->data, source.size() * sizeof(float));
      packPanels(source.data(), *weight.layout, packed.data());
      os.write(reinterpret_cast<const char *>(packed.data()), packed.size() * sizeof(float));
    } else {
      os.write(reinterpret_cast<const char *>(view->data), view->byteSize);
    }
    if (weight.file)
      store.release(weight.file.getValue(), key);
    return llvm::Error::success();
  });
}

static llvm::Error checkDestination(StringRef outputDir, bool &exists);

llvm::Expected<std::string> createStagingDir(StringRef outputDir) {
  // Refused before any work; publishing checks again.
  bool exists;
  if (llvm::Error error = checkDestination(outputDir, exists))
    return std::move(error);
  // Beside the destination, so that publishing is a rename within one file
  // system; absolute, since LLVM puts a relative prefix under $TMPDIR.
  // remove_dots also drops a trailing separator ("out/" is "out").
  llvm::SmallString<256> destination(outputDir);
  llvm::sys::path::remove_dots(destination, /*remove_dot_dot=*/false);
  if (std::error_code error = llvm::sys::fs::make_absolute(destination))
    return artifactError(outputDir + ": cannot resolve: " + error.message());
  llvm::SmallString<256> parent = llvm::sys::path::parent_path(destination);
  if (std::error_code error = llvm::sys::fs::create_directories(parent))
    return artifactError(parent + ": cannot create: " + error.message());
  llvm::SmallString<256> staging;
  std::string prefix = (destination + ".tmp").str();
  if (std::error_code error = llvm::sys::fs::createUniqueDirectory(prefix, staging))
    return artifactError(outputDir + ": cannot create a staging directory: " + error.message());
  return staging.str().str();
}

/// Why `directory` must not be replaced by an artifact, or "" when it is one
/// of ours: its manifest carries our format marker and it holds nothing but
/// the files that manifest names, so replacing it loses nothing of the user's.
static std::string notReplaceable(StringRef directory) {
  llvm::SmallString<256> manifestPath(directory);
  llvm::sys::path::append(manifestPath, "manifest.json");
  auto text = llvm::MemoryBuffer::getFile(manifestPath);
  Manifest manifest;
  std::string error;
  if (!text || !manifest.fromJson((*text)->getBuffer().str(), error))
    return "exists and is not a peft-mlir artifact";
  std::error_code walkError;
  for (llvm::sys::fs::directory_iterator it(directory, walkError), end; it != end && !walkError;
       it.increment(walkError)) {
    StringRef name = llvm::sys::path::filename(it->path());
    if (name != "manifest.json" && name != manifest.library && name != manifest.weightsFile &&
        !llvm::is_contained(manifest.sources, name))
      return ("holds '" + name + "', which is not part of its artifact").str();
  }
  if (walkError)
    return "cannot be listed: " + walkError.message();
  return "";
}

/// Whether an artifact may be written at `outputDir`: nothing is there, or an
/// artifact of ours (`exists` tells which).
static llvm::Error checkDestination(StringRef outputDir, bool &exists) {
  llvm::sys::fs::file_status status;
  exists = !llvm::sys::fs::status(outputDir, status, /*follow=*/false);
  if (!exists)
    return llvm::Error::success();
  if (status.type() == llvm::sys::fs::file_type::symlink_file)
    return artifactError(outputDir + ": is a symbolic link; not writing through it");
  if (status.type() != llvm::sys::fs::file_type::directory_file)
    return artifactError(outputDir + ": exists and is not a directory; not replacing it");
  std::string reason = notReplaceable(outputDir);
  if (!reason.empty())
    return artifactError(outputDir + ": " + reason + "; not replacing it");
  return llvm::Error::success();
}

llvm::Error publishStagingDir(StringRef stagingDir, StringRef outputDir) {
  bool exists;
  if (llvm::Error error = checkDestination(outputDir, exists))
    return error;
  if (exists) {
    // Moved aside first, so that a failing rename leaves the old artifact.
    llvm::SmallString<256> aside;
    if (std::error_code error =
            llvm::sys::fs::createUniqueDirectory((outputDir + ".old").str(), aside))
      return artifactError(outputDir + ": cannot replace: " + error.message());
    if (std::error_code error = llvm::sys::fs::rename(outputDir, aside)) {
      llvm::sys::fs::remove(aside);
      return artifactError(outputDir + ": cannot replace: " + error.message());
    }
    if (std::error_code error = llvm::sys::fs::rename(stagingDir, outputDir)) {
      llvm::sys::fs::rename(aside, outputDir);
      return artifactError(outputDir + ": cannot move the artifact into place: " +
                           error.message());
    }
    llvm::sys::fs::remove_directories(aside);
    return llvm::Error::success();
  }
  if (std::error_code error = llvm::sys::fs::rename(stagingDir, outputDir))
    return artifactError(outputDir + ": cannot move the artifact into place: " +
                         error.message());
  return llvm::Error::success();
}

} // namespace peft
