# concat.cmake - cmake -DGFN_CAT_OUT=out -DGFN_CAT_IN="a;b;..." -P concat.cmake
# writes the files of GFN_CAT_IN one after the other into GFN_CAT_OUT: the
# portable dialect header and a kernel source become one OpenCL program.
file(WRITE "${GFN_CAT_OUT}.tmp" "")
foreach(f ${GFN_CAT_IN})
  file(READ "${f}" text)
  file(APPEND "${GFN_CAT_OUT}.tmp" "${text}")
endforeach()
file(RENAME "${GFN_CAT_OUT}.tmp" "${GFN_CAT_OUT}")
