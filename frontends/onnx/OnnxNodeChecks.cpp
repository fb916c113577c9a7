//===- OnnxNodeChecks.cpp - A node and the graph against ONNX's rules -------===//
//
// Run before a node's handler, so that handlers may index the inputs,
// outputs and attributes ONNX's schema guarantees, and trust the element
// types it allows: a malformed model gets an error naming the node, never
// an out-of-range access or IR that does not verify.
//
//===----------------------------------------------------------------------===//
#include "frontends/onnx/GraphImporter.h"
#include "runtime/Manifest.h"

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/StringSet.h"

#include <limits>

#include "onnx/defs/data_type_utils.h"
#include "onnx/defs/schema.h"

using namespace mlir;

namespace peft {

/// The newest default-domain opset whose schemas this libonnx holds.
static int64_t newestKnownOpset() {
  static const int64_t newest = [] {
    const auto &ranges = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
    auto found = ranges.find(onnx::ONNX_DOMAIN);
    return found == ranges.end() ? int64_t(0) : int64_t(found->second.second);
  }();
  return newest;
}

/// ONNX's name of an imported value's type ("tensor(float)"), or "" for a
/// type ONNX has no name for.
static std::string onnxTypeName(const ImportedValue &value) {
  Type element = value.type().getElementType();
  const char *name = nullptr;
  if (element.isF32())
    name = "float";
  else if (element.isF16())
    name = "float16";
  else if (element.isBF16())
    name = "bfloat16";
  else if (element.isF64())
    name = "double";
  else if (element.isInteger(1))
    name = "bool";
  else if (auto integer = dyn_cast<IntegerType>(element)) {
    static const char *const kSigned[] = {"int8", "int16", "int32", "int64"};
    static const char *const kUnsigned[] = {"uint8", "uint16", "uint32", "uint64"};
    int log = integer.getWidth() == 8    ? 0
              : integer.getWidth() == 16 ? 1
              : integer.getWidth() == 32 ? 2
              : integer.getWidth() == 64 ? 3
                                         : -1;
    if (log >= 0)
      name = value.isUnsigned ? kUnsigned[log] : kSigned[log];
  }
  return name ? std::string("tensor(") + name + ")" : std::string();
}

/// "2", "1 to 3" or "at least 1" (variadic: the schema's maximum is INT_MAX).
static std::string arity(int min, int max) {
  if (min == max)
    return std::to_string(min);
  if (max == std::numeric_limits<int>::max())
    return "at least " + std::to_string(min);
  return std::to_string(min) + " to " + std::to_string(max);
}

LogicalResult GraphImporter::checkNode(const onnx::NodeProto &node) {
  for (int i = 0; i < node.output_size(); ++i)
    if (!node.output(i).empty() && values.count(node.output(i)))
      return fail(node, "output '" + node.output(i) + "' is already defined");
  const onnx::OpSchema *schema =
      onnx::OpSchemaRegistry::Schema(node.op_type(), opset, onnx::ONNX_DOMAIN);
  if (!schema)
    return success(); // Newer than this libonnx: the handler checks what it reads.
  // Ops gained inputs and types in later opsets: the upper bounds and types
  // hold only where the schema is the model's own.
  bool exact = opset <= newestKnownOpset();
  if (node.input_size() < schema->min_input() ||
      (exact && node.input_size() > schema->max_input()))
    return fail(node, "has " + llvm::Twine(node.input_size()) + " inputs; ONNX's " +
                          node.op_type() + " takes " +
                          arity(schema->min_input(), schema->max_input()));
  if (node.output_size() < schema->min_output() ||
      (exact && node.output_size() > schema->max_output()))
    return fail(node, "has " + llvm::Twine(node.output_size()) + " outputs; ONNX's " +
                          node.op_type() + " gives " +
                          arity(schema->min_output(), schema->max_output()));
  const auto &formals = schema->inputs();
  for (int i = 0; i < node.input_size() && !formals.empty(); ++i) {
    const auto &formal = formals[std::min<size_t>(i, formals.size() - 1)];
    bool optional = formal.GetOption() == onnx::OpSchema::Optional ||
                    (formal.GetOption() == onnx::OpSchema::Variadic &&
                     i >= static_cast<int>(formals.size()) - 1 + formal.GetMinArity());
    if (node.input(i).empty()) {
      if (!optional)
        return fail(node, "input " + llvm::Twine(i) + " ('" + formal.GetName() +
                              "') is required but not given");
      continue;
    }
  }
  // Attributes of the wrong kind would read as their defaults.
  for (const onnx::AttributeProto &attr : node.attribute()) {
    auto known = schema->attributes().find(attr.name());
    if (known == schema->attributes().end())
      continue; // Newer attributes: handlers read what they know.
    if (attr.type() != onnx::AttributeProto::UNDEFINED && attr.type() != known->second.type)
      return fail(node, "attribute '" + attr.name() + "' is a " +
                            onnx::AttributeProto::AttributeType_Name(attr.type()) + ", ONNX wants " +
                            onnx::AttributeProto::AttributeType_Name(known->second.type));
  }
  if (!exact)
    return success();
  for (const auto &[name, attribute] : schema->attributes())
    if (attribute.required && !findAttr(node, name))
      return fail(node, "lacks the required attribute '" + name + "'");
  // Element types, and the inputs that share a type parameter agreeing.
  llvm::StringMap<std::string> bound; // Type parameter -> the type it took.
  for (int i = 0; i < node.input_size() && !formals.empty(); ++i) {
    auto found = values.find(node.input(i));
    if (node.input(i).empty() || found == values.end())
      continue; // The handler names an undefined input.
    const auto &formal = formals[std::min<size_t>(i, formals.size() - 1)];
    std::string type = onnxTypeName(found->second);
    if (type.empty())
      continue;
    const onnx::DataTypeSet &allowed = formal.GetTypes();
    if (!allowed.empty() && !allowed.count(onnx::Utils::DataTypeUtils::ToType(type)))
      return fail(node, "input '" + node.input(i) + "' is " + type + ", which ONNX's " +
                            node.op_type() + " does not take there");
    auto [known, inserted] = bound.try_emplace(formal.GetTypeStr(), type);
    bool homogeneous = formal.GetOption() != onnx::OpSchema::Variadic || formal.GetIsHomogeneous();
    if (!inserted && known->second != type && homogeneous)
      return fail(node, "input '" + node.input(i) + "' is " + type + ", but another input of type " +
                            formal.GetTypeStr() + " is " + known->second);
  }
  return success();
}

LogicalResult GraphImporter::checkGraph() {
  const onnx::GraphProto &graph = model.graph();
  auto failGraph = [&](const llvm::Twine &message) {
    error = (path + ": " + message).str();
    return failure();
  };
  llvm::StringSet<> inputs, outputs;
  for (const auto &input : graph.input())
    if (!inputs.insert(input.name()).second)
      return failGraph("graph input '" + input.name() + "' is listed twice");
  for (const auto &output : graph.output())
    if (!outputs.insert(output.name()).second)
      return failGraph("graph output '" + output.name() + "' is listed twice");
  for (const auto &list : {&graph.input(), &graph.output()})
    for (const onnx::ValueInfoProto &info : *list) {
      llvm::SmallVector<int64_t> shape;
      for (const auto &dim : info.type().tensor_type().shape().dim())
        shape.push_back(dim.has_dim_value() ? dim.dim_value() : 0);
      if (shape.size() > Manifest::kMaxRank || !checkedByteSize(shape, DType::F64))
        return failGraph("graph " + llvm::Twine(list == &graph.input() ? "input" : "output") +
                         " '" + info.name() + "' has an invalid shape " + formatShape(shape));
    }
  return success();
}

LogicalResult GraphImporter::checkShapes(ModuleOp module) {
  auto fits = [](Type type) {
    auto tensor = dyn_cast<ShapedType>(type);
    if (!tensor || !tensor.hasRank())
      return true;
    SmallVector<int64_t> shape;
    for (int64_t size : tensor.getShape())
      shape.push_back(ShapedType::isDynamic(size) ? 0 : size);
    return checkedByteSize(shape, DType::F64).has_value();
  };
  WalkResult walk = module.walk([&](Operation *op) {
    for (Type type : op->getResultTypes()) {
      if (fits(type))
        continue;
      std::string where = "a value";
      if (auto name = dyn_cast<NameLoc>(op->getLoc()))
        where = "node '" + name.getName().str() + "'";
      error = path + ": " + where + " would have the shape " +
              formatShape(cast<ShapedType>(type).getShape()) + ", which is too large";
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  return failure(walk.wasInterrupted());
}

} // namespace peft
