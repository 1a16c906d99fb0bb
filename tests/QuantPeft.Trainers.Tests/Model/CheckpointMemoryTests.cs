using System.Runtime.InteropServices;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Trainers.Model;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Model;

[CollectionDefinition(nameof(ResidentMemory), DisableParallelization = true)]
public sealed class ResidentMemory;

/// <summary>
/// Measures the activations a forward pass leaves alive for backward as the growth of the process's
/// resident set. glibc is told to serve every allocation above 64 KiB with its own mmap, so a freed
/// tensor goes back to the kernel at once and the resident set tracks live tensors; the collection
/// runs alone so other tests do not allocate meanwhile.
/// </summary>
[Collection(nameof(ResidentMemory))]
public class CheckpointMemoryTests
{
    private readonly ITestOutputHelper _output;

    public CheckpointMemoryTests(ITestOutputHelper output) => _output = output;

    private const int MmapThreshold = -3;   // M_MMAP_THRESHOLD in malloc.h

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int MallOpt(int param, int value);

    // Live C-heap bytes (glibc mallinfo2: blocks in use plus mapped blocks), not the resident set: freed pages that earlier
    // tests left in the arenas would be reused by this forward without growing the resident set.
    private static long LiveBytes() => QuantPeft.Memory.Probes.NativeHeap.Read()?.LiveBytes ?? throw new InvalidOperationException("mallinfo2 unavailable");

    private static long KeptByForward(CausalLm model, Tensor ids, bool checkpoint)
    {
        model.GradientCheckpointing = checkpoint;
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long before = LiveBytes();
        long kept;
        using (var scope = NewDisposeScope())
        {
            var loss = model.Hidden(ids).pow(2).mean();
            kept = LiveBytes() - before;         // graph alive: everything saved for backward is live
            loss.backward();
        }
        model.zero_grad();
        return kept;
    }

    [Fact]
    public void Checkpointing_KeepsFarFewerActivationsAlive()
    {
        Assert.Equal(1, MallOpt(MmapThreshold, 64 * 1024));
        var spec = new ModelSpec
        {
            ModelType = "llama", NumLayers = 4, HiddenSize = 256, IntermediateSize = 704, NumHeads = 4, NumKvHeads = 2,
            VocabSize = 64, MaxPositionEmbeddings = 1024,
        };
        using var model = new CausalLm(spec, new DecoderOptions { ComputeDType = ScalarType.Float32 });
        using var ids = randint(0, 64, [2, 256], dtype: ScalarType.Int64);
        KeptByForward(model, ids, checkpoint: false);   // warm-up: gradient buffers and thread pools exist from here on

        long plain = KeptByForward(model, ids, checkpoint: false);
        long checkpointed = KeptByForward(model, ids, checkpoint: true);

        _output.WriteLine($"live growth over forward: plain {plain / 1048576.0:F1} MiB, checkpointed {checkpointed / 1048576.0:F1} MiB");
        // One block's input is 2·256·256 floats = 0.5 MiB; without checkpointing each block keeps its norms,
        // q/k/v, rotary products, attention output and the 704-wide MLP activations: several MiB per block.
        long blockInput = 2L * 256 * 256 * sizeof(float);
        Assert.True(plain > 4 * 10 * blockInput, $"without checkpointing the forward kept only {plain} bytes");
        Assert.True(checkpointed < plain / 5, $"checkpointed forward kept {checkpointed} bytes, plain {plain}");
    }
}
