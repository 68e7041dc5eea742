# Install rules: headers, libgfn.so (target gfn), libgfn.a (target
# gfn_static), a pkg-config file gfn.pc and a CMake package (gfnConfig.cmake,
# gfnConfigVersion.cmake, targets gfn::gfn and gfn::gfn_static), so that both
#   cc app.c $(pkg-config --cflags --libs gfn)
# and
#   find_package(gfn REQUIRED)  +  target_link_libraries(app gfn::gfn)
# work from the install prefix. tests/install checks both.
include(CMakePackageConfigHelpers)

set(GFN_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/gfn
    CACHE STRING "Where gfnConfig.cmake is installed, relative to the prefix")
set(GFN_INSTALL_PKGCONFIGDIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig
    CACHE STRING "Where gfn.pc is installed, relative to the prefix")

# ---- headers and libraries -------------------------------------------------
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/gfn
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")

install(TARGETS gfn gfn_static
        EXPORT gfnTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# ---- pkg-config ------------------------------------------------------------
# The prefix is found from the .pc file's own place (${pcfiledir}, known to
# pkg-config and pkgconf alike), so the same file is right for
# `cmake --install --prefix <anywhere>` and for a copied install tree.
function(gfn_pc_path out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "\${prefix}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

if(IS_ABSOLUTE "${GFN_INSTALL_PKGCONFIGDIR}")
  set(GFN_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _gfn_pc_up "/p/${GFN_INSTALL_PKGCONFIGDIR}" "/p")
  string(REGEX REPLACE "/$" "" _gfn_pc_up "${_gfn_pc_up}")
  set(GFN_PC_PREFIX "\${pcfiledir}/${_gfn_pc_up}")
endif()
gfn_pc_path(GFN_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
gfn_pc_path(GFN_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")

configure_file(${PROJECT_SOURCE_DIR}/cmake/gfn.pc.in
               ${PROJECT_BINARY_DIR}/gfn.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/gfn.pc
        DESTINATION ${GFN_INSTALL_PKGCONFIGDIR})

# ---- CMake package -----------------------------------------------------------
install(EXPORT gfnTargets
        NAMESPACE gfn::
        FILE gfnTargets.cmake
        DESTINATION ${GFN_INSTALL_CMAKEDIR})

configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/gfnConfig.cmake.in
  ${PROJECT_BINARY_DIR}/gfnConfig.cmake
  INSTALL_DESTINATION ${GFN_INSTALL_CMAKEDIR})

# Until 1.0 the ABI may change with every minor version (gfn.h), so only
# the same major.minor is compatible.
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/gfnConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)

install(FILES ${PROJECT_BINARY_DIR}/gfnConfig.cmake
              ${PROJECT_BINARY_DIR}/gfnConfigVersion.cmake
        DESTINATION ${GFN_INSTALL_CMAKEDIR})
