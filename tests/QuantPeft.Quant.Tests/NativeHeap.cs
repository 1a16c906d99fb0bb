using System.Runtime.InteropServices;

namespace QuantPeft.Quant.Tests;

/// <summary>
/// Live bytes of the native heap (glibc <c>mallinfo2</c>: arena bytes in use plus mmapped chunks).
/// libtorch's CPU allocator allocates through malloc, so every live CPU tensor shows up here.
/// </summary>
internal static partial class NativeHeap
{
    [StructLayout(LayoutKind.Sequential)]
    private struct MallInfo2
    {
        public nuint Arena, Ordblks, Smblks, Hblks, Hblkhd, Usmblks, Fsmblks, Uordblks, Fordblks, Keepcost;
    }

    [LibraryImport("libc", EntryPoint = "mallinfo2")]
    private static partial MallInfo2 NativeMallInfo2();

    public static bool Available => OperatingSystem.IsLinux();

    /// <summary>Collects managed garbage first so that finalizable tensor wrappers do not blur the reading.</summary>
    public static long LiveBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var info = NativeMallInfo2();
        return (long)(info.Uordblks + info.Hblkhd);
    }
}
