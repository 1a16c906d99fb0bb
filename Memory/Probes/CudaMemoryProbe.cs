using System.Runtime.InteropServices;

namespace QuantPeft.Memory.Probes;

/// <summary>A reading of device memory from the CUDA runtime.</summary>
/// <param name="Available">Whether CUDA answered.</param>
/// <param name="FreeBytes">Free device memory.</param>
/// <param name="TotalBytes">Total device memory.</param>
/// <param name="Reason">Why it is unavailable (empty when available).</param>
public readonly record struct CudaMemoryInfo(bool Available, long FreeBytes, long TotalBytes, string Reason)
{
    /// <summary>Used bytes (total − free): everything on the device, this process's context included.</summary>
    public long UsedBytes => TotalBytes - FreeBytes;
}

/// <summary>
/// Device memory through <c>cudaMemGetInfo</c> in libcudart, loaded at run time, so that machines without
/// CUDA get an "unavailable" answer instead of an exception.
/// </summary>
public static class CudaMemoryProbe
{
    private static readonly string[] LibraryNames =
        ["libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0", "cudart64_12.dll", "cudart64_110.dll"];

    private static readonly Lazy<(IntPtr Function, string Reason)> Entry = new(Load);

    /// <summary>Queries free and total device memory of the current device.</summary>
    public static unsafe CudaMemoryInfo Query()
    {
        var (fn, reason) = Entry.Value;
        if (fn == IntPtr.Zero) return new CudaMemoryInfo(false, 0, 0, reason);
        nuint free = 0, total = 0;
        var cudaMemGetInfo = (delegate* unmanaged<nuint*, nuint*, int>)fn;
        int status = cudaMemGetInfo(&free, &total);
        return status == 0
            ? new CudaMemoryInfo(true, (long)free, (long)total, "")
            : new CudaMemoryInfo(false, 0, 0, $"cudaMemGetInfo returned error {status} (no device or no driver)");
    }

    private static (IntPtr, string) Load()
    {
        foreach (string name in LibraryNames)
        {
            if (!NativeLibrary.TryLoad(name, typeof(CudaMemoryProbe).Assembly, null, out IntPtr lib)) continue;
            if (NativeLibrary.TryGetExport(lib, "cudaMemGetInfo", out IntPtr fn)) return (fn, "");
        }
        return (IntPtr.Zero, $"CUDA runtime not found (tried {string.Join(", ", LibraryNames)})");
    }
}
