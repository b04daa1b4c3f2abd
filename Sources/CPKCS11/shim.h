// The PKCS#11 C interface, from Debian's p11-kit headers (libp11-kit-dev). Modules are loaded
// at run time with dlopen; nothing here links a module.
#include <p11-kit/pkcs11.h>
#include <dlfcn.h>
