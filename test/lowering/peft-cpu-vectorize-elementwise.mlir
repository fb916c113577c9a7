// RUN: peft-opt %s --peft-cpu-vectorize-elementwise="vector-width=16" | FileCheck %s

#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
#col = affine_map<(d0, d1) -> (d1)>
#t = affine_map<(d0, d1) -> (d1, d0)>

// A bias add and exp over rows of 40: tiles of one row by 16 columns, as
// vectors, and the last 8 columns of the row as a vector of 8.
// CHECK-LABEL: func.func @map
// CHECK: scf.for %{{.*}} step %c1
// CHECK:   scf.for %{{.*}} = %c0 to %c32 step %c16
// CHECK:     vector.transfer_read {{.*}} : tensor<1x16xf32>, vector<16xf32>
// CHECK:     vector.transfer_read {{.*}} : tensor<16xf32>, vector<16xf32>
// CHECK:     arith.addf {{.*}} : vector<16xf32>
// CHECK:     math.exp {{.*}} : vector<16xf32>
// CHECK:     vector.transfer_write
// CHECK:   vector.transfer_read {{.*}} : tensor<1x8xf32>, vector<8xf32>
// CHECK:   math.exp {{.*}} : vector<8xf32>
// CHECK-NOT: linalg.generic
func.func @map(%x: tensor<?x40xf32>, %b: tensor<40xf32>, %init: tensor<?x40xf32>) -> tensor<?x40xf32> {
  %y = linalg.generic {indexing_maps = [#id, #col, #id], iterator_types = ["parallel", "parallel"]} ins(%x, %b : tensor<?x40xf32>, tensor<40xf32>) outs(%init : tensor<?x40xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %s = arith.addf %a, %c : f32
    %e = math.exp %s : f32
    linalg.yield %e : f32
  } -> tensor<?x40xf32>
  return %y : tensor<?x40xf32>
}

// A row sum over a length known at run time (softmax's denominator): the
// full tiles of 16 are reduced as vectors into the row's sum; the rest of
// the row (fewer than 16) stays a scalar loop. A tile's elements are summed
// in any order (a tree, then one add into the running sum).
// CHECK-LABEL: func.func @row_sum
// CHECK: scf.for
// CHECK:   %[[FULL:.*]] = affine.apply
// CHECK:   scf.for %{{.*}} = %c0 to %[[FULL]] step %c16
// CHECK:     vector.transfer_read {{.*}} : tensor<1x16xf32>, vector<16xf32>
// CHECK:     vector.reduction <add>, %{{.*}}, %{{.*}} fastmath<reassoc>
// CHECK:   scf.for %{{.*}} = %[[FULL]] to %{{.*}} step %c16
// CHECK:     linalg.generic {{.*}} ins(%{{.*}} : tensor<1x?xf32>)
func.func @row_sum(%x: tensor<?x?xf32>, %acc: tensor<?xf32>) -> tensor<?xf32> {
  %r = linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]} ins(%x : tensor<?x?xf32>) outs(%acc : tensor<?xf32>) {
  ^bb0(%a: f32, %o: f32):
    %s = arith.addf %a, %o : f32
    linalg.yield %s : f32
  } -> tensor<?xf32>
  return %r : tensor<?xf32>
}

// Left alone: a transposed read, a reduction over the outer dimension, a
// read at computed positions (a gather), and booleans (bytes in memory, bits
// in a vector).
// CHECK-LABEL: func.func @others
// CHECK-COUNT-4: linalg.generic
// CHECK-NOT: vector.
func.func @others(%x: tensor<40x40xf32>, %init: tensor<40x40xf32>, %acc: tensor<40xf32>, %ids: tensor<40xindex>, %flags: tensor<40x40xi1>) -> (tensor<40x40xf32>, tensor<40xf32>, tensor<40x40xf32>, tensor<40x40xi1>) {
  %n = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%flags : tensor<40x40xi1>) outs(%flags : tensor<40x40xi1>) {
  ^bb0(%f: i1, %o: i1):
    %true = arith.constant true
    %v = arith.xori %f, %true : i1
    linalg.yield %v : i1
  } -> tensor<40x40xi1>
  %g = linalg.generic {indexing_maps = [#row, #id], iterator_types = ["parallel", "parallel"]} ins(%ids : tensor<40xindex>) outs(%init : tensor<40x40xf32>) {
  ^bb0(%i: index, %o: f32):
    %j = linalg.index 1 : index
    %v = tensor.extract %x[%i, %j] : tensor<40x40xf32>
    linalg.yield %v : f32
  } -> tensor<40x40xf32>
  %y = linalg.generic {indexing_maps = [#t, #id], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<40x40xf32>) outs(%init : tensor<40x40xf32>) {
  ^bb0(%a: f32, %o: f32):
    linalg.yield %a : f32
  } -> tensor<40x40xf32>
  %r = linalg.generic {indexing_maps = [#id, #col], iterator_types = ["reduction", "parallel"]} ins(%x : tensor<40x40xf32>) outs(%acc : tensor<40xf32>) {
  ^bb0(%a: f32, %o: f32):
    %s = arith.addf %a, %o : f32
    linalg.yield %s : f32
  } -> tensor<40xf32>
  return %y, %r, %g, %n : tensor<40x40xf32>, tensor<40xf32>, tensor<40x40xf32>, tensor<40x40xi1>
}
