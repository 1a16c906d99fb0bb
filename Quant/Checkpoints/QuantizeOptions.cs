using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Checkpoints;

/// <summary>
/// How a checkpoint is quantized. Which tensors: the linear projections of attention and MLP
/// (<c>q/k/v/o_proj</c>, <c>gate/up/down_proj</c>); embeddings, norms, biases and the LM head stay in their
/// original dtype, as transformers' bitsandbytes integration leaves them.
/// </summary>
public sealed record QuantizeOptions
{
    /// <summary>Creates validated options.</summary>
    /// <exception cref="QuantInputException">The block size is not a power of two in 32..4096.</exception>
    public QuantizeOptions(CheckpointFormat format, int blockSize = 64, bool doubleQuant = true, bool quantizeLmHead = false)
    {
        if (format != CheckpointFormat.Int8 && !BlockSizes.IsValid(blockSize))
            throw new QuantInputException($"--blocksize {blockSize} is not allowed: use a power of two from 32 to 4096");
        Format = format;
        BlockSize = blockSize;
        DoubleQuant = doubleQuant;
        QuantizeLmHead = quantizeLmHead;
    }

    /// <summary>The weight format.</summary>
    public CheckpointFormat Format { get; }

    /// <summary>Elements per absmax block (4-bit formats).</summary>
    public int BlockSize { get; }

    /// <summary>Whether the 4-bit absmax is itself quantized (8-bit, blocks of 256).</summary>
    public bool DoubleQuant { get; }

    /// <summary>Whether <c>lm_head.weight</c> is quantized too (off by default, as in transformers).</summary>
    public bool QuantizeLmHead { get; }

    private static readonly string[] LinearSuffixes =
    [
        ".self_attn.q_proj.weight", ".self_attn.k_proj.weight", ".self_attn.v_proj.weight", ".self_attn.o_proj.weight",
        ".mlp.gate_proj.weight", ".mlp.up_proj.weight", ".mlp.down_proj.weight",
        ".self_attn.qkv_proj.weight", ".mlp.gate_up_proj.weight",   // Phi-3's fused projections
    ];

    /// <summary>Whether the tensor <paramref name="name"/> is quantized under these options.</summary>
    public bool Quantizes(string name) =>
        IsLinearProjection(name) || (QuantizeLmHead && name == "lm_head.weight");

    /// <summary>Whether <paramref name="name"/> is the weight of an attention or MLP projection of a decoder layer.</summary>
    public static bool IsLinearProjection(string name) => LinearSuffixes.Any(name.EndsWith);
}
