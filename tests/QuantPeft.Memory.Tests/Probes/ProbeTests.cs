using System.Runtime.InteropServices;
using QuantPeft.Memory.Probes;

namespace QuantPeft.Memory.Tests.Probes;

/// <summary>
/// Process-wide RSS is shared by every test in the assembly, so the measuring tests run alone
/// (xunit runs a collection with parallelization disabled after the parallel ones).
/// </summary>
[CollectionDefinition(nameof(ProcessMemoryCollection), DisableParallelization = true)]
public sealed class ProcessMemoryCollection;

[Collection(nameof(ProcessMemoryCollection))]
public sealed class ProbeTests
{
    [Fact]
    public unsafe void TouchingNMegabytesRaisesThePeakByAboutN()
    {
        if (!ProcessMemoryProbe.IsSupported) return; // /proc exists only on Linux, where CI runs
        const long size = 256L << 20;
        using var probe = new ProcessMemoryProbe(TimeSpan.FromMilliseconds(2));
        IntPtr block = Marshal.AllocHGlobal((nint)size);
        try
        {
            byte* p = (byte*)block;
            for (long i = 0; i < size; i += 4096) p[i] = 1; // fault every page in
            Thread.Sleep(50);
            long peak = probe.PeakAboveBaselineBytes;
            Assert.InRange(peak, (long)(size * 0.9), (long)(size * 1.25));
        }
        finally { Marshal.FreeHGlobal(block); }
    }

    [Fact]
    public void ReadReportsPlausibleResidentSizes()
    {
        if (!ProcessMemoryProbe.IsSupported) return;
        ResidentMemory m = ProcessMemoryProbe.Read();
        Assert.True(m.CurrentBytes > 1 << 20);
        Assert.True(m.PeakBytes >= m.CurrentBytes);
    }

    [Fact]
    public void CudaProbeAnswersCleanlyWithOrWithoutCuda()
    {
        CudaMemoryInfo info = CudaMemoryProbe.Query();
        if (info.Available)
        {
            Assert.True(info.TotalBytes > 0);
            Assert.InRange(info.FreeBytes, 0, info.TotalBytes);
        }
        else Assert.False(string.IsNullOrEmpty(info.Reason));
    }
}
