using System.Diagnostics;
using QuantPeft.Memory.Probes;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes;

// The run's memory peaks as measured at the end of each step and evaluation: the process's resident set, and on CUDA
// the device memory in use.
public sealed partial class FinetuneRecipe
{
    /// <summary>The largest resident set seen at the end of a step or an evaluation.</summary>
    public long PeakRssBytes { get; private set; }
    /// <summary>
    /// On a CUDA run, the largest device memory in use seen at the end of a step or an evaluation (<c>cudaMemGetInfo</c>:
    /// total − free, so other processes on the same GPU count too); null on the CPU or when the CUDA runtime does not answer.
    /// </summary>
    public long? PeakDeviceBytes { get; private set; }
    /// <summary>Which memory <see cref="PeakBytes"/> shows: <c>cpu RSS</c> or <c>cuda:N used</c>.</summary>
    public string PeakSource => PeakDeviceBytes is null ? "cpu RSS" : $"{Device} used (cudaMemGetInfo)";
    /// <summary>The run's peak in the memory of its device: <see cref="PeakDeviceBytes"/> on CUDA, <see cref="PeakRssBytes"/> otherwise.</summary>
    public long PeakBytes => PeakDeviceBytes ?? PeakRssBytes;

    private long SampleMemory()
    {
        using var process = Process.GetCurrentProcess();
        long rss = process.WorkingSet64;
        PeakRssBytes = Math.Max(PeakRssBytes, Math.Max(rss, process.PeakWorkingSet64));
        if (Device.type == DeviceType.CUDA && CudaMemoryProbe.Query() is { Available: true } info)
            PeakDeviceBytes = Math.Max(PeakDeviceBytes ?? 0, info.UsedBytes);
        return rss;
    }
}
