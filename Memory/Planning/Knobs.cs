namespace QuantPeft.Memory.Planning;

/// <summary>
/// How the frozen (or trained) base weights are stored on the device: the one storage-format type of the planner, the
/// trainer (<c>BaseWeights.Factory</c> builds the bases of <see cref="Bf16"/>, <see cref="Nf4"/> and <see cref="Fp4"/>) and
/// the CLI (<c>--weights</c>, spelled by <see cref="Knob"/>).
/// </summary>
/// <remarks>
/// <see cref="Nf4"/> and <see cref="Fp4"/> pick the 4-bit code book that the codecs know as <c>QuantPeft.Quant.Codecs.FourBitType</c>;
/// that enum lives in Quant, below this layer, and names only a code book, never a storage choice.
/// </remarks>
public enum WeightFormat
{
    /// <summary>bfloat16, 2 bytes per parameter.</summary>
    Bf16,
    /// <summary>Blockwise 8-bit (dynamic map, one float32 absmax per 256 values).</summary>
    Int8,
    /// <summary>bitsandbytes NF4, 64-blocks (optionally double-quantized absmax).</summary>
    Nf4,
    /// <summary>bitsandbytes FP4, 64-blocks (optionally double-quantized absmax).</summary>
    Fp4,
    /// <summary>LQ-LoRA: a mixed NF-b quantization at an average bit width, plus low-rank factors trained as LoRA.</summary>
    LqLora,
}

/// <summary>What is trained.</summary>
public enum TrainingMethod
{
    /// <summary>Every parameter.</summary>
    Full,
    /// <summary>LoRA adapters (B·A) on the target projections.</summary>
    Lora,
    /// <summary>PiSSA: LoRA initialised from the principal singular triplets (same storage as LoRA).</summary>
    Pissa,
    /// <summary>OSoRA: frozen U_r, V_r; trains the r singular values and a d_out vector.</summary>
    Osora,
    /// <summary>VeRA: frozen shared random matrices; trains two scaling vectors per target.</summary>
    Vera,
    /// <summary>DoRA: LoRA plus a trained magnitude vector per output row.</summary>
    Dora,
    /// <summary>LISA: γ sampled decoder layers plus embedding and head, full-parameter.</summary>
    Lisa,
    /// <summary>GaLore: full-parameter with low-rank projected optimizer states.</summary>
    Galore,
    /// <summary>Natural GaLore: GaLore with a two-sided projection and an empirical-Fisher transform.</summary>
    NaturalGalore,
    /// <summary>LoRAM: LoRA trained on a structurally pruned base, recovered to the full model.</summary>
    Loram,
    /// <summary>Bone (block affine): one trained r×d_out block added to every r-column block of the weight.</summary>
    Bone,
    /// <summary>DyLoRA: LoRA trained at a rank b ≤ r sampled each step, so the adapter truncated to any k ≤ r works.</summary>
    Dylora,
    /// <summary>NLoRA: a three-factor B·M·A adapter (r×r intermediate M) initialised from W by the Nyström method.</summary>
    Nlora,
    /// <summary>RandLoRA: a full-rank sum of frozen shared random bases; trains the diagonal scalings of each base term.</summary>
    RandLora,
    /// <summary>EVA: LoRA whose A is the top right-singular vectors of each target's input activations, ranks redistributed by explained variance.</summary>
    Eva,
    /// <summary>LoRA-GA: LoRA whose A, B are the SVD of the first batches' full gradient, over W − s·B₀A₀.</summary>
    LoraGa,
}

/// <summary>The optimizer that updates the trainable parameters.</summary>
public enum OptimizerKind
{
    /// <summary>AdamW with two moments in the state dtype (fp32 by default).</summary>
    AdamW,
    /// <summary>bitsandbytes-style blockwise 8-bit AdamW (256-blocks).</summary>
    AdamW8bit,
    /// <summary>AdamW whose large state buffers live in paged (unified) memory.</summary>
    PagedAdamW,
    /// <summary>8-bit AdamW whose large state buffers live in paged memory.</summary>
    PagedAdamW8bit,
    /// <summary>GaLore AdamW: moments of the projected gradient.</summary>
    Galore,
    /// <summary>GaLore with 8-bit projected moments.</summary>
    Galore8bit,
    /// <summary>Natural GaLore (SubSpaceAdamW with the natural-gradient history).</summary>
    NaturalGalore,
}

/// <summary>How attention is computed.</summary>
public enum AttentionKind
{
    /// <summary>A fused kernel (flash / memory-efficient): no s×s scores are kept.</summary>
    Fused,
    /// <summary>Eager softmax(QKᵀ)V: keeps the s×s probabilities of every head for backward.</summary>
    Eager,
}

/// <summary>What the planner optimises when several candidates fit.</summary>
public enum Objective
{
    /// <summary>Highest expected fine-tuning quality first.</summary>
    Quality,
    /// <summary>Fastest expected step time per token first.</summary>
    Speed,
    /// <summary>Smallest predicted peak first.</summary>
    Memory,
}

/// <summary>The kind of device that trains; decides the default runtime overhead.</summary>
public enum DeviceKind
{
    /// <summary>An NVIDIA GPU through CUDA: context plus caching-allocator reserve.</summary>
    Cuda,
    /// <summary>The host CPU: device memory is host memory.</summary>
    Cpu,
}

/// <summary>A linear projection of a decoder layer, by its Hugging Face module name.</summary>
public enum LinearModule
{
    /// <summary><c>self_attn.q_proj</c>.</summary>
    Q,
    /// <summary><c>self_attn.k_proj</c>.</summary>
    K,
    /// <summary><c>self_attn.v_proj</c>.</summary>
    V,
    /// <summary><c>self_attn.o_proj</c>.</summary>
    O,
    /// <summary><c>mlp.gate_proj</c>.</summary>
    Gate,
    /// <summary><c>mlp.up_proj</c>.</summary>
    Up,
    /// <summary><c>mlp.down_proj</c>.</summary>
    Down,
}
