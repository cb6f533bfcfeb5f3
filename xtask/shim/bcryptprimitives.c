/*
 * bcryptprimitives.dll for Wine 8, which lacks ProcessPrng (Rust's std
 * asks for it at start-up to seed HashMap keys). `cargo xtask test-windows`
 * builds this with mingw and puts it beside the test executables; Windows
 * itself has the real DLL and never sees this one.
 *
 * ProcessPrng(PBYTE, SIZE_T) fills the buffer from the system RNG and
 * always returns TRUE; this forwards to RtlGenRandom (advapi32's
 * SystemFunction036), which takes at most a ULONG per call.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG len);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
