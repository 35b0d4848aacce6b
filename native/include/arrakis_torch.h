/*
 * The subset of libtorch's stable C ABI (libtorch >= 2.10) that arrakis-jvm calls.
 *
 * These declarations restate facts of libtorch's exported C interface: the AOTInductor
 * shim (aoti_torch_*), the stable dispatcher (torch_*), and the generated per-device
 * shims (aoti_torch_cpu_*, aoti_torch_cuda_*). jextract turns this file into bindings/; after any edit,
 * run scripts/generate-bindings.sh. Keep one declaration per line: the binding check
 * in the unit tests reads this file.
 */
#ifndef ARRAKIS_TORCH_H
#define ARRAKIS_TORCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every fallible call returns 0 on success; on failure libtorch prints its message to stderr. */
typedef int32_t AOTITorchError;
/* An owning reference to an at::Tensor. */
typedef struct AtenTensorOpaque* AtenTensorHandle;
/* One 64-bit slot of a dispatcher stack. */
typedef uint64_t StableIValue;
typedef struct StableListOpaque* StableListHandle;
typedef struct StringOpaque* StringHandle;

/* ---- Constants: dtype, device type and layout codes are read at run time, not assumed. ---- */
int32_t aoti_torch_device_type_cpu(void);
int32_t aoti_torch_device_type_cuda(void);
int32_t aoti_torch_dtype_bfloat16(void);
int32_t aoti_torch_dtype_float16(void);
int32_t aoti_torch_dtype_float32(void);
int32_t aoti_torch_dtype_float64(void);
int32_t aoti_torch_dtype_uint8(void);
int32_t aoti_torch_dtype_int8(void);
int32_t aoti_torch_dtype_int16(void);
int32_t aoti_torch_dtype_int32(void);
int32_t aoti_torch_dtype_int64(void);
int32_t aoti_torch_dtype_bool(void);
int32_t aoti_torch_dtype_complex64(void);
int32_t aoti_torch_dtype_complex128(void);
size_t aoti_torch_dtype_element_size(int32_t dtype);
uint64_t aoti_torch_abi_version(void);

/* ---- Tensor lifecycle ---- */
AOTITorchError aoti_torch_delete_tensor_object(AtenTensorHandle tensor);
AOTITorchError aoti_torch_new_tensor_handle(AtenTensorHandle orig_handle, AtenTensorHandle* new_handle);
AOTITorchError aoti_torch_empty_strided(int64_t ndim, const int64_t* sizes_ptr, const int64_t* strides_ptr, int32_t dtype, int32_t device_type, int32_t device_index, AtenTensorHandle* ret_new_tensor);
AOTITorchError aoti_torch_create_tensor_from_blob(void* data, int64_t ndim, const int64_t* sizes_ptr, const int64_t* strides_ptr, int64_t storage_offset, int32_t dtype, int32_t device_type, int32_t device_index, AtenTensorHandle* ret);
AOTITorchError aoti_torch_copy_(AtenTensorHandle self, AtenTensorHandle src, int32_t non_blocking);
AOTITorchError aoti_torch_clone(AtenTensorHandle self, AtenTensorHandle* ret);

/* ---- Tensor metadata and data (returned pointers are borrowed) ---- */
AOTITorchError aoti_torch_get_data_ptr(AtenTensorHandle tensor, void** ret_data_ptr);
AOTITorchError aoti_torch_get_dim(AtenTensorHandle tensor, int64_t* ret_dim);
AOTITorchError aoti_torch_get_numel(AtenTensorHandle tensor, int64_t* ret_numel);
AOTITorchError aoti_torch_get_sizes(AtenTensorHandle tensor, int64_t** ret_sizes);
AOTITorchError aoti_torch_get_strides(AtenTensorHandle tensor, int64_t** ret_strides);
AOTITorchError aoti_torch_get_storage_offset(AtenTensorHandle tensor, int64_t* ret_storage_offset);
AOTITorchError aoti_torch_get_dtype(AtenTensorHandle tensor, int32_t* ret_dtype);
AOTITorchError aoti_torch_get_device_type(AtenTensorHandle tensor, int32_t* ret_device_type);
AOTITorchError aoti_torch_get_device_index(AtenTensorHandle tensor, int32_t* ret_device_index);
AOTITorchError aoti_torch_is_contiguous(AtenTensorHandle tensor, bool* ret_is_contiguous);
AOTITorchError aoti_torch_item_float64(AtenTensorHandle tensor, double* ret_value);
AOTITorchError aoti_torch_item_int64(AtenTensorHandle tensor, int64_t* ret_value);
AOTITorchError aoti_torch_item_bool(AtenTensorHandle tensor, bool* ret_value);
AOTITorchError aoti_torch_scalar_to_tensor_float64(double value, AtenTensorHandle* ret_new_tensor);

/* ---- The dispatcher: any ATen op by name, every schema argument on the stack. ---- */
AOTITorchError torch_call_dispatcher(const char* opName, const char* overloadName, StableIValue* stack, uint64_t extension_build_version);
AOTITorchError torch_new_list_reserve_size(size_t size, StableListHandle* ret);
AOTITorchError torch_list_size(StableListHandle list_handle, size_t* size);
AOTITorchError torch_list_get_item(StableListHandle list_handle, size_t index, StableIValue* element);
AOTITorchError torch_list_push_back(StableListHandle list_handle, StableIValue element);
AOTITorchError torch_delete_list(StableListHandle list_handle);
AOTITorchError torch_new_string_handle(const char* data, size_t length, StringHandle* handle);
AOTITorchError torch_delete_string(StringHandle handle);
AOTITorchError torch_parse_device_string(const char* device_string, uint32_t* out_device_type, int32_t* out_device_index);
AOTITorchError torch_get_num_threads(uint32_t* out_num_threads);

/* ---- Typed CPU shims for the hottest ops (they take Scalars, which the dispatcher cannot). ---- */
AOTITorchError aoti_torch_cpu_add_Tensor(AtenTensorHandle self, AtenTensorHandle other, double alpha, AtenTensorHandle* ret0);
AOTITorchError aoti_torch_cpu_add_Scalar(AtenTensorHandle self, double other, double alpha, AtenTensorHandle* ret0);
AOTITorchError aoti_torch_cpu_mul_Tensor(AtenTensorHandle self, AtenTensorHandle other, AtenTensorHandle* ret0);
AOTITorchError aoti_torch_cpu_mul_Scalar(AtenTensorHandle self, double other, AtenTensorHandle* ret0);
AOTITorchError aoti_torch_cpu_pow_Tensor_Scalar(AtenTensorHandle self, double exponent, AtenTensorHandle* ret0);

/* ---- The same typed shims for CUDA tensors (libtorch_cuda.so); only a CUDA build has them, so they are reached
 * only for tensors on a GPU (io.arrakis.torch.TypedShims chooses). ---- */
AOTITorchError aoti_torch_cuda_add_Tensor(AtenTensorHandle self, AtenTensorHandle other, double alpha, AtenTensorHandle* ret0);
AOTITorchError aoti_torch_cuda_add_Scalar(AtenTensorHandle self, double other, double alpha, AtenTensorHandle* ret0);
AOTITorchError aoti_torch_cuda_mul_Tensor(AtenTensorHandle self, AtenTensorHandle other, AtenTensorHandle* ret0);
AOTITorchError aoti_torch_cuda_mul_Scalar(AtenTensorHandle self, double other, AtenTensorHandle* ret0);
AOTITorchError aoti_torch_cuda_pow_Tensor_Scalar(AtenTensorHandle self, double exponent, AtenTensorHandle* ret0);

/* ---- Device-generic shims: the Scalar-taking ops that work on any device. ---- */
AOTITorchError aoti_torch_aten_subtract_Tensor(AtenTensorHandle self, AtenTensorHandle other, double alpha, AtenTensorHandle* ret0);
AOTITorchError aoti_torch_aten_fill__Scalar(AtenTensorHandle self, double value);

/* ---- CUDA runtime, reached through a CUDA libtorch's dependencies; never called with a CPU build. ---- */
int32_t cudaGetDeviceCount(int32_t* count);

/* ---- C library: setting OpenMP's environment before libtorch's OpenMP runtime reads it at load. ---- */
int32_t setenv(const char* name, const char* value, int32_t overwrite);

/*
 * C++ `operator new(size_t)` from libstdc++ (mangled name), loaded with libtorch.
 * An optional dispatcher argument with a value is a heap StableIValue that libtorch
 * frees with `delete`, so it must come from this allocator.
 */
void* _Znwm(size_t size);

#endif /* ARRAKIS_TORCH_H */
