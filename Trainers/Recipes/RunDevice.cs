using QuantPeft.Memory.Planning;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes;

/// <summary>What libtorch reports about CUDA: whether it is usable and how many devices it sees.</summary>
/// <param name="Available">libtorch's <c>cuda.is_available()</c>.</param>
/// <param name="DeviceCount">libtorch's <c>cuda.device_count()</c>.</param>
public readonly record struct CudaReport(bool Available, int DeviceCount)
{
    /// <summary>What this process's libtorch reports.</summary>
    public static CudaReport Query()
    {
        bool available = torch.cuda.is_available();
        return new CudaReport(available, available ? torch.cuda.device_count() : 0);
    }
}

/// <summary>
/// The device a run computes on, chosen by <c>--device auto|cpu|cuda|cuda:N</c>. <c>auto</c> is the first CUDA device
/// when libtorch sees one, else the CPU. The planner's device kind follows this choice, never CUDA's presence alone:
/// a CPU run on a machine with a GPU is planned, trimmed and measured as a CPU run.
/// </summary>
public static class RunDevice
{
    /// <summary>The flag's default.</summary>
    public const string Auto = "auto";

    /// <summary>The MSBuild property that selects a CUDA build of libtorch (README, "Running on a GPU").</summary>
    public const string BackendHint = "build qpeft with -p:TorchBackend=cuda-linux or -p:TorchBackend=cuda-windows for a CUDA libtorch";

    /// <summary>Resolves <paramref name="text"/> to a libtorch device string (<c>cpu</c> or <c>cuda:N</c>).</summary>
    /// <param name="text">auto, cpu, cuda or cuda:N (case-insensitive).</param>
    /// <param name="flag">The flag named in errors.</param>
    /// <param name="cuda">What libtorch reports; null asks this process's libtorch (only when CUDA is needed).</param>
    /// <exception cref="RecipeException">Not one of the forms, or CUDA (or that index) is not there; the message says what libtorch reported.</exception>
    public static string Resolve(string text, string flag = "--device", CudaReport? cuda = null)
    {
        string t = text.Trim().ToLowerInvariant();
        if (t == "cpu") return "cpu";
        if (t == Auto)
        {
            var report = cuda ?? CudaReport.Query();
            return report.Available && report.DeviceCount > 0 ? "cuda:0" : "cpu";
        }
        int index;
        if (t == "cuda") index = 0;
        else if (t.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(t.AsSpan(5), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out index)) { }
        else throw new RecipeException($"{flag}: expected auto, cpu, cuda or cuda:N, found '{text}'");
        var seen = cuda ?? CudaReport.Query();
        if (!seen.Available || seen.DeviceCount == 0)
            throw new RecipeException($"{flag} {t}: libtorch reports no CUDA device (cuda.is_available() = {(seen.Available ? "true" : "false")}, device_count() = {seen.DeviceCount}); {BackendHint}");
        if (index >= seen.DeviceCount)
            throw new RecipeException($"{flag} {t}: libtorch reports {seen.DeviceCount} CUDA device(s) (cuda:0 to cuda:{seen.DeviceCount - 1})");
        return $"cuda:{index}";
    }

    /// <summary>The planner's device kind for a resolved device: CUDA for a CUDA device, the CPU's otherwise.</summary>
    public static DeviceKind KindOf(string device) =>
        device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase) ? DeviceKind.Cuda : DeviceKind.Cpu;

    /// <summary>Whether <paramref name="device"/> is the host: host-only work (C heap trims, direct memory reads) applies.</summary>
    public static bool IsHost(Device device) => QuantPeft.Quant.Torch.HostKernels.For(device);
}
