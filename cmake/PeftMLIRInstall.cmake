# `cmake --install build --prefix P`: the tools in P/bin, the libraries (and
# the archives peftc links into every model.so) in P/lib, the headers, the
# generated .inc files and the TableGen files in P/include at the paths the
# sources include them by ("dialects/peft/PeftOps.h"), and the CMake package
# PeftMLIR in P/lib/cmake/PeftMLIR (docs/library.md). peftc finds its
# archives in ../lib beside its bin/, in the build tree and installed alike.
include(CMakePackageConfigHelpers)
set(PEFT_INSTALL_BINDIR bin)
set(PEFT_INSTALL_LIBDIR lib)
set(PEFT_INSTALL_INCLUDEDIR include)
set(PEFT_INSTALL_CMAKEDIR ${PEFT_INSTALL_LIBDIR}/cmake/PeftMLIR)

# What another compiler links, as PeftMLIR::<name>.
set(peft_exported
  PeftSupport Support
  PeftAdapterReaders AdapterReaders
  PeftManifest Manifest
  PeftDialect Dialect
  PeftPasses Passes
  PeftLowering Lowering
  PeftCpuBackend CpuBackend
  PeftCudaBackend CudaBackend
  PeftOnnxFrontend OnnxFrontend
  PeftCompiler Compiler
  peft_runtime Runtime)
set(peft_export_targets)
while(peft_exported)
  list(POP_FRONT peft_exported target name)
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name})
  list(APPEND peft_export_targets ${target})
endwhile()
install(TARGETS ${peft_export_targets} EXPORT PeftMLIRTargets
        ARCHIVE DESTINATION ${PEFT_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${PEFT_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${PEFT_INSTALL_INCLUDEDIR})
install(TARGETS peft_model_support peft_cuda_model_support
        ARCHIVE DESTINATION ${PEFT_INSTALL_LIBDIR})
install(TARGETS peft-opt peft-translate peftc peft-run RUNTIME DESTINATION ${PEFT_INSTALL_BINDIR})

foreach(dir dialects passes lowering frontends compiler support runtime)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir} DESTINATION ${PEFT_INSTALL_INCLUDEDIR}
          FILES_MATCHING PATTERN "*.h" PATTERN "*.td")
  install(DIRECTORY ${PROJECT_BINARY_DIR}/${dir} DESTINATION ${PEFT_INSTALL_INCLUDEDIR}
          FILES_MATCHING PATTERN "*.inc" PATTERN "CMakeFiles" EXCLUDE)
endforeach()

install(EXPORT PeftMLIRTargets NAMESPACE PeftMLIR:: DESTINATION ${PEFT_INSTALL_CMAKEDIR})
configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/PeftMLIRConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/PeftMLIRConfig.cmake
  INSTALL_DESTINATION ${PEFT_INSTALL_CMAKEDIR}
  PATH_VARS PEFT_INSTALL_INCLUDEDIR PEFT_INSTALL_BINDIR PEFT_INSTALL_LIBDIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/PeftMLIRConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/PeftMLIRConfig.cmake
              ${PROJECT_BINARY_DIR}/cmake/PeftMLIRConfigVersion.cmake
        DESTINATION ${PEFT_INSTALL_CMAKEDIR})
