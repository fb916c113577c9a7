/* Runs a bert-tiny artifact through the installed runtime alone: input_ids
 * (i * 7) % 90 and an attention mask of ones, [2, 8]; prints each output's
 * name, shape and values, one per line, for install.test to compare with
 * peft-run's. */
#include "runtime/peft_runtime.h"

#include <stdio.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: run-artifact ARTIFACT\n");
    return 2;
  }
  PeftModel *model = peft_model_load(argv[1]);
  if (!model) {
    fprintf(stderr, "run-artifact: %s\n", peft_last_error());
    return 1;
  }
  int64_t shape[2] = {2, 8}, ids[16], mask[16];
  for (int i = 0; i < 16; ++i) {
    ids[i] = (i * 7) % 90;
    mask[i] = 1;
  }
  if (peft_model_set_input(model, "input_ids", PEFT_I64, 2, shape, ids) ||
      peft_model_set_input(model, "attention_mask", PEFT_I64, 2, shape, mask) ||
      peft_model_run(model)) {
    fprintf(stderr, "run-artifact: %s\n", peft_last_error());
    peft_model_free(model);
    return 1;
  }
  for (size_t o = 0; o < peft_model_num_outputs(model); ++o) {
    const char *name = peft_model_output_name(model, o);
    const PeftTensor *out = peft_model_output(model, name);
    size_t count = 1;
    printf("%s", name);
    for (int64_t d = 0; d < out->rank; ++d) {
      printf(" %lld", (long long)out->shape[d]);
      count *= (size_t)out->shape[d];
    }
    printf("\n");
    const float *values = out->data;
    for (size_t i = 0; i < count; ++i)
      printf("%.9g\n", values[i]);
  }
  peft_model_free(model);
  return 0;
}
