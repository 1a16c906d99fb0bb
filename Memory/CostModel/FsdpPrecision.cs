namespace QuantPeft.Memory.CostModel;

/// <summary>
/// The dtypes and prefetching of the engine that runs the sharded plan. Those differ between engines and recipes,
/// and each changes the per-GPU bytes, so they are written here as data rather than folded into constants.
/// </summary>
public sealed record FsdpPrecision
{
    /// <summary>
    /// Bytes per element of a trained adapter's sharded master copy, of its sharded gradient and of each AdamW moment
    /// (PyTorch's AdamW keeps its moments in the parameter's dtype): 4 where the adapters are fp32 (PEFT casts adapters
    /// of a bf16 model to fp32, <c>autocast_adapter_dtype</c>), 2 in a pure-bf16 recipe.
    /// </summary>
    public int AdapterMasterBytes { get; init; } = 4;

    /// <summary>
    /// The same for full-parameter training: 2 where the engine loads the model in bf16 (axolotl with <c>bf16</c>,
    /// a Trainer with <c>torch_dtype=bfloat16</c>), so that weights, gradients and AdamW moments are bf16.
    /// </summary>
    public int FullMasterBytes { get; init; } = 2;

    /// <summary>
    /// Whether the next unit is gathered while the current one runs backward (FSDP1's default <c>BACKWARD_PRE</c>,
    /// FSDP2's implicit backward prefetch): two decoder layers are then unsharded at once instead of one.
    /// </summary>
    public bool BackwardPrefetch { get; init; } = true;

    /// <summary>Bytes per element of the gathered (compute) copy and of the gradient reduce-scatter: bf16.</summary>
    public const int ComputeBytes = 2;

    /// <summary>
    /// The Hugging Face stack that axolotl and an accelerate-launched Trainer run: bf16 mixed precision, PEFT's fp32
    /// adapters, a bf16-loaded model for full fine-tuning, backward prefetch on.
    /// </summary>
    public static FsdpPrecision HuggingFace { get; } = new();

    /// <summary>
    /// Answer.AI's <c>fsdp_qlora</c> train.py with its default <c>--precision bf16</c>: the LoRA layers are created in
    /// bf16 and no mixed-precision policy upcasts them, so adapters, gradients and AdamW moments are all bf16; FSDP's
    /// constructor default <c>BACKWARD_PRE</c> prefetch is left on.
    /// </summary>
    public static FsdpPrecision AnswerAiBf16 { get; } = new() { AdapterMasterBytes = 2 };
}
