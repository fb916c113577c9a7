/*===- peft_runtime.h - Run models that peftc compiled ----------*- C -*-===*\
 *
 * A small C API over an artifact directory (manifest.json, the compiled
 * library, weights.safetensors):
 *
 *   PeftModel *model = peft_model_load("out/bert");
 *   if (!model) { fprintf(stderr, "%s\n", peft_last_error()); ... }
 *   int64_t shape[2] = {2, 8};
 *   peft_model_set_input(model, "input_ids", PEFT_I64, 2, shape, ids);
 *   peft_model_run(model);
 *   const PeftTensor *out = peft_model_output(model, "last_hidden_state");
 *   ... out->data, out->shape ...
 *   peft_model_free(model);
 *
 * Inputs are borrowed until the next run; outputs belong to the model and stay
 * valid until the next run or peft_model_free. On a GPU (target cuda), inputs
 * and outputs may stay in device memory: peft_model_set_input_device and
 * peft_model_set_output_location. Functions that fail return NULL or non-zero
 * and leave a one-line message in peft_last_error() (per thread).
 *
 * Threads: a loaded model is shared; what a request binds and gets back lives
 * in a session. Each thread that runs the model at the same time as another
 * creates its own (peft_session_create) and calls the peft_session_* twins
 * of the calls above; the peft_model_* run calls use the model's own session,
 * one thread at a time. Loading, unloading and binding weights may happen on
 * any thread while sessions run: a run uses the weights that were current
 * when it started, and the next run the new ones.
 *
\*===----------------------------------------------------------------------===*/
#ifndef PEFT_RUNTIME_H
#define PEFT_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum PeftDType {
  PEFT_F32 = 0,
  PEFT_F16 = 1,
  PEFT_BF16 = 2,
  PEFT_F64 = 3,
  PEFT_I64 = 4,
  PEFT_I32 = 5,
  PEFT_I8 = 6,
  PEFT_U8 = 7,
  PEFT_BOOL = 8,
  PEFT_I16 = 9,
  PEFT_U16 = 10,
  PEFT_U32 = 11,
  PEFT_U64 = 12,
} PeftDType;

typedef struct PeftTensor {
  PeftDType dtype;
  int64_t rank;
  const int64_t *shape; /* rank sizes */
  const void *data;     /* row-major, densely packed */
} PeftTensor;

/* Where tensors live: the host's memory, or the device a model runs on (the
 * GPU of target cuda, in the current CUDA context; target cuda-emulated,
 * which tests the CUDA lowering on the host, has host memory as its device's). */
typedef enum PeftLocation {
  PEFT_HOST = 0,
  PEFT_DEVICE = 1,
} PeftLocation;

typedef struct PeftModel PeftModel;
typedef struct PeftSession PeftSession;

/* Loads the artifact in `directory`; NULL on failure. */
PeftModel *peft_model_load(const char *directory);
/* Frees the handle and its own session; the sessions created from it keep
 * what they need and may be freed later. */
void peft_model_free(PeftModel *model);

/* The entry's signature, as the manifest names it. */
size_t peft_model_num_inputs(const PeftModel *model);
const char *peft_model_input_name(const PeftModel *model, size_t index);
PeftDType peft_model_input_dtype(const PeftModel *model, size_t index);
size_t peft_model_num_outputs(const PeftModel *model);
const char *peft_model_output_name(const PeftModel *model, size_t index);

/* Binds input `name` to `data` (borrowed until the next run). Checks the
 * dtype, the rank and every static size; returns 0 on success. */
int peft_model_set_input(PeftModel *model, const char *name, PeftDType dtype,
                         int64_t rank, const int64_t *shape, const void *data);

/* PEFT_DEVICE when the model runs on a device, else PEFT_HOST. */
PeftLocation peft_model_location(const PeftModel *model);

/* Binds input `name` to `data` in the device's memory (a CUdeviceptr of the
 * primary context of device 0), borrowed until the next run: not copied.
 * The same checks as peft_model_set_input (token ids from a copy); only for
 * models whose location is PEFT_DEVICE. Returns 0 on success. */
int peft_model_set_input_device(PeftModel *model, const char *name, PeftDType dtype,
                                int64_t rank, const int64_t *shape, const void *data);

/* Where the next runs leave their outputs: PEFT_HOST (the default) copies
 * them to host memory; PEFT_DEVICE leaves each in a dense buffer of the
 * device's memory (PeftTensor.data is then a device pointer), owned by the
 * model until the next run or peft_model_free. Returns 0 on success. */
int peft_model_set_output_location(PeftModel *model, PeftLocation location);

/* Binds the weights named by the tensors of the safetensors file at `path`
 * (another adapter's, say) in place of the artifact's, from the next run; the
 * file stays mapped while its tensors are bound or a run reads them. Every tensor must be a weight of the model, of
 * its dtype and shape (F16 and BF16 tensors for an F32 weight are widened,
 * exactly, into a copy); returns 0 on success. */
int peft_model_bind_weights(PeftModel *model, const char *path);

/* The same for an adapter's file (adapter_model.safetensors): its tensors,
 * keyed as Hugging Face PEFT saves them, bind over the weights of the
 * artifact's unmerged adapter `adapter` (the NAME it was compiled under),
 * which the artifact names as PEFT does in memory (`...lora_A.NAME.weight`). */
int peft_model_bind_adapter_weights(PeftModel *model, const char *path, const char *adapter);

/* An artifact compiled with --mode multi: loads the Hugging Face PEFT LoRA
 * adapter in `directory` (adapter_config.json, adapter_model.safetensors)
 * into adapter slot `slot`, in place of what it held; rows of the batch whose
 * adapter_index is `slot` use it from the next run. Its modules must have
 * slots in the artifact and fit them (rank at most the slots' capacity);
 * layers it does not adapt get zeros in that slot. Runs of other threads go
 * on meanwhile: those that read slot `slot` finish first (the load waits for
 * them), and runs that would read it wait for the load; the load writes only
 * the slot's part of the tables, in place (on a GPU, on copies of them).
 * Returns 0 on success. */
int peft_model_load_adapter(PeftModel *model, int64_t slot, const char *directory);

/* Empties adapter slot `slot` (compiled in or loaded): rows whose
 * adapter_index is `slot` run the base model alone from the next run, and
 * the slot is free for another adapter; as a load, it waits for the runs
 * reading the slot. Returns 0 on success. */
int peft_model_unload_adapter(PeftModel *model, int64_t slot);

/* The first adapter slot that holds no adapter (none was compiled in or
 * loaded), or -1 when all do or the artifact has none. */
int64_t peft_model_free_adapter_slot(const PeftModel *model);

/* Runs the model on the bound inputs; returns 0 on success. */
int peft_model_run(PeftModel *model);

/* Output `name` of the last run, or NULL; its data stays valid until the next
 * run or peft_model_free. */
const PeftTensor *peft_model_output(const PeftModel *model, const char *name);

/* A session of `model`: inputs, outputs and (target cuda) a stream of its
 * own, so that sessions on different threads run at once. NULL on failure. */
PeftSession *peft_session_create(PeftModel *model);
void peft_session_free(PeftSession *session);

/* The peft_model_* calls of the same names, for `session`. */
int peft_session_set_input(PeftSession *session, const char *name, PeftDType dtype,
                           int64_t rank, const int64_t *shape, const void *data);
int peft_session_set_input_device(PeftSession *session, const char *name, PeftDType dtype,
                                  int64_t rank, const int64_t *shape, const void *data);
int peft_session_set_output_location(PeftSession *session, PeftLocation location);
int peft_session_run(PeftSession *session);
const PeftTensor *peft_session_output(const PeftSession *session, const char *name);

/* Threads that compiled models split their parallel loops over (one pool
 * for the process). n <= 0 restores the default: PEFT_NUM_THREADS when it is
 * a positive integer, else the CPUs this process may run on. Results are the
 * same bit for bit for every count. Returns the count now used. */
int peft_set_num_threads(int n);
int peft_get_num_threads(void);

/* The message of the last failure on this thread. */
const char *peft_last_error(void);

/* Size in bytes of one element of `dtype`. */
size_t peft_dtype_size(PeftDType dtype);

#ifdef __cplusplus
}
#endif

#endif /* PEFT_RUNTIME_H */
