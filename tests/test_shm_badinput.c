#include "test_shm_util.h"
int main(void){return 77;}
