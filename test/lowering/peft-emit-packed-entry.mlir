// RUN: peft-opt %s --peft-emit-packed-entry | FileCheck %s --implicit-check-not=@external_packed

// The runtime calls every entry as void NAME_packed(void **args).
// CHECK: llvm.func @forward_packed(%[[ARGS:.*]]: !llvm.ptr)
// CHECK: %[[SLOT0:.*]] = llvm.getelementptr %[[ARGS]][0] : (!llvm.ptr) -> !llvm.ptr, !llvm.ptr
// CHECK: %[[RESULT:.*]] = llvm.load %[[SLOT0]] : !llvm.ptr -> !llvm.ptr
// CHECK: %[[SLOT1:.*]] = llvm.getelementptr %[[ARGS]][1] : (!llvm.ptr) -> !llvm.ptr, !llvm.ptr
// CHECK: %[[INPUT:.*]] = llvm.load %[[SLOT1]] : !llvm.ptr -> !llvm.ptr
// CHECK: llvm.call @_mlir_ciface_forward(%[[RESULT]], %[[INPUT]]) : (!llvm.ptr, !llvm.ptr) -> ()
// CHECK: llvm.return
llvm.func @_mlir_ciface_forward(%result: !llvm.ptr, %input: !llvm.ptr) {
  llvm.return
}

// Declarations get no wrapper (--implicit-check-not: nowhere in the output).
llvm.func @_mlir_ciface_external(!llvm.ptr)
