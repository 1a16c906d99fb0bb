namespace QuantPeft.Memory.CostModel;

/// <summary>
/// How the training runtime behaves where implementations differ in what they keep alive. The planner
/// prices QuantPeft's own runtime by default (<see cref="QuantPeft"/>); the published figures it is
/// checked against were measured on PyTorch stacks whose behaviour is written here as data
/// (<see cref="PyTorch"/>, <see cref="PyTorchBitsandbytes"/>) instead of as fitted constants.
/// </summary>
public sealed record CostSettings
{
    /// <summary>Bytes per AdamW moment element: 4 (fp32 states) or 2 (bf16 states, as in pure-bf16 setups).</summary>
    public int AdamStateBytes { get; init; } = 4;

    /// <summary>
    /// Whether RMSNorm keeps its input upcast to fp32 for backward (Hugging Face's <c>LlamaRMSNorm</c> computes
    /// the variance in fp32, and <c>pow</c>/<c>mul</c> save that fp32 tensor): 4 bytes per element instead of 2.
    /// </summary>
    public bool NormKeepsF32Input { get; init; } = true;

    /// <summary>
    /// Whether a quantized linear keeps its input for backward even when its weight is frozen. bitsandbytes'
    /// <c>MatMul4Bit</c> saves <c>(A, B)</c> whenever any input needs a gradient, although only B is needed.
    /// </summary>
    public bool QuantizedLinearKeepsInput { get; init; }

    /// <summary>
    /// Whether a 32-bit AdamW step runs multi-tensor (PyTorch's default <c>foreach</c> implementation), which
    /// materialises <c>sqrt(v)</c> for every parameter of the group at once; otherwise one parameter at a time.
    /// </summary>
    public bool ForeachAdamW { get; init; }

    /// <summary>
    /// Whether the block runs compiled (torch.compile / fused kernels): the partitioner keeps only matmul
    /// inputs and outputs and recomputes pointwise work in backward, so RMSNorm keeps its bf16 input and
    /// SwiGLU keeps gate and up only (SiLU and the product are recomputed).
    /// </summary>
    public bool Compiled { get; init; }

    /// <summary>
    /// Whether the optimizer step runs QuantPeft's per-tensor rules, which upcast the gradient and decode both
    /// moments into f32 copies (whatever the state format) before updating them in place, instead of updating the
    /// states where they lie as PyTorch's AdamW and bitsandbytes' 8-bit kernels do; the step's temporaries are then
    /// priced by <see cref="OptimizerCost.DecodedStepTemp"/>. Under layer-wise updates the rules step only the
    /// decoder projections inside backward; the other trainable tensors keep their gradients until the step after it.
    /// </summary>
    public bool DecodedMomentStep { get; init; }

    /// <summary>
    /// Whether the chunked loss accumulates a training LM head's gradient in an f32 V×H buffer (QuantPeft's
    /// <c>ChunkedCrossEntropyFunction</c>), converted to the head's dtype at the end: 4·V·H bytes beside the saved
    /// activations while the head's backward runs.
    /// </summary>
    public bool HeadGradientInF32 { get; init; }

    /// <summary>
    /// Bytes per element of adapter parameters and their gradients: 2 where adapters live in the base's bf16, 4 where
    /// they are kept in f32 (QuantPeft's adapters: <c>LoraLinear</c>, <c>DoraLinear</c>, <c>OsoraLinear</c> default to f32).
    /// With 4, a LoRA-family adapter also casts its projection's input to f32 before A, and A's matmul saves that copy
    /// and its own f32 output for backward: <c>4·(d_in + r)</c> bytes per token per adapted projection.
    /// </summary>
    public int AdapterBytes { get; init; } = 2;

    /// <summary>
    /// Rows of a 4-bit weight decoded at a time, or null where a quantized matmul dequantizes the whole matrix
    /// (bitsandbytes). QuantPeft's <c>Linear4bitFunction</c> decodes row slabs of 1024 (column slabs of about 1024·in
    /// elements in backward) into one buffer shared by every layer and kept for the life of the process, so the buffer
    /// is min(out, 1024)·in elements of the largest projection, present in the optimizer step as well.
    /// </summary>
    public int? DequantSlabRows { get; init; }

    /// <summary>
    /// Values per decode slab of a quantized matmul on a GPU, or null where the GPU decodes as the CPU does. QuantPeft
    /// decodes about 32 Mi values (64 MiB in bf16) at a time on a GPU (<c>QuantizedTensor.DeviceSlabElements</c>): every
    /// torch kernel is a launch, so a few large slabs beat many small ones. Priced on CUDA plans only.
    /// </summary>
    public long? DeviceSlabElements { get; init; }

    /// <summary>Number of chunks of a chunked loss (torchtune and our runtime use 8).</summary>
    public int LossChunks { get; init; } = 8;

    /// <summary>
    /// Tokens per chunk of a chunked loss that works in fixed-size token chunks (QuantPeft: 1024, see
    /// <see cref="ActivationCost.ChunkedLossBytes"/>), or null where the loss is split into <see cref="LossChunks"/> parts.
    /// </summary>
    public int? LossChunkTokens { get; init; }

    /// <summary>
    /// Elements of the f32 slab buffer DoRA's row norms work in, shared by every DoRA layer and kept for the process
    /// (QuantPeft: 2²⁰, <c>DoraLinear.NormSlabElements</c>), or null where no such buffer is kept.
    /// </summary>
    public long? DoraNormSlabElements { get; init; }

    /// <summary>Natural GaLore's gradient history length s (default 20).</summary>
    public int NaturalGaloreHistory { get; init; } = 20;

    /// <summary>QuantPeft's TorchSharp runtime: HF-style RMSNorm, quantized linears that keep only the packed weight, per-parameter AdamW over decoded moments, f32 adapters.</summary>
    public static CostSettings QuantPeft { get; } = new() { DecodedMomentStep = true, HeadGradientInF32 = true, AdapterBytes = 4, DequantSlabRows = 1024, DeviceSlabElements = 32L << 20, LossChunkTokens = 1024, DoraNormSlabElements = 1L << 20 };

    /// <summary>PyTorch + Hugging Face-style modules: foreach AdamW.</summary>
    public static CostSettings PyTorch { get; } = new() { ForeachAdamW = true };

    /// <summary>PyTorch with bitsandbytes 4-bit linears (which keep their input).</summary>
    public static CostSettings PyTorchBitsandbytes { get; } = new() { ForeachAdamW = true, QuantizedLinearKeepsInput = true };
}
