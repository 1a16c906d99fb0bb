namespace QuantPeft.Memory.CostModel;

/// <summary>One term of the per-GPU memory of an FSDP-sharded plan. JSON names are the snake_case forms.</summary>
public enum ShardedComponent
{
    /// <summary>CUDA context, allocator reserve and library workspaces of one rank.</summary>
    RuntimeOverhead,
    /// <summary>This rank's 1/N shard of the base weights (4-bit: the packed bytes only), every FSDP unit padded to a multiple of N.</summary>
    ShardedWeights,
    /// <summary>4-bit quantization state (absmax, nested absmax, code tables): not an FSDP parameter, so every rank holds all of it.</summary>
    QuantState,
    /// <summary>This rank's shard of the trained adapters' master copy (0 for full fine-tuning, whose parameters are the sharded weights).</summary>
    AdapterShards,
    /// <summary>This rank's shard of the gradients, in the master dtype.</summary>
    Gradients,
    /// <summary>This rank's shard of the AdamW moments.</summary>
    OptimizerStates,
    /// <summary>The optimizer step's temporaries over this rank's shard.</summary>
    OptimizerStepTemp,
    /// <summary>Unsharded copies while a layer runs: the root unit (embedding, head, final norm) and one or two decoder layers with their adapters.</summary>
    GatheredUnits,
    /// <summary>The gradient reduce-scatter of the largest trained unit: its unsharded gradient and its shard, in bf16.</summary>
    CommBuffers,
    /// <summary>One 4-bit matrix dequantized to bf16 for its matmul (bitsandbytes decodes the whole matrix).</summary>
    DequantBuffer,
    /// <summary>Tensors this rank's micro-batch keeps for backward (with checkpointing: layer inputs and one recomputed layer).</summary>
    Activations,
    /// <summary>Gradients of activations alive while one layer runs backward.</summary>
    ActivationGradients,
    /// <summary>Logits and the loss's intermediates.</summary>
    Logits,
    /// <summary>Allocator fragmentation margin.</summary>
    Fragmentation,
    /// <summary>Host memory of all ranks under parameter offload: the sharded weights, adapters, gradients and optimizer states.</summary>
    OffloadedHost,
}

/// <summary>Names and charge order of <see cref="ShardedComponent"/> values.</summary>
public static class ShardedComponents
{
    /// <summary>Stable snake_case name used in JSON and reports.</summary>
    public static string JsonName(this ShardedComponent c) => c switch
    {
        ShardedComponent.RuntimeOverhead => "runtime_overhead",
        ShardedComponent.ShardedWeights => "sharded_weights",
        ShardedComponent.QuantState => "quant_state",
        ShardedComponent.AdapterShards => "adapter_shards",
        ShardedComponent.Gradients => "gradients",
        ShardedComponent.OptimizerStates => "optimizer_states",
        ShardedComponent.OptimizerStepTemp => "optimizer_step_temp",
        ShardedComponent.GatheredUnits => "gathered_units",
        ShardedComponent.CommBuffers => "comm_buffers",
        ShardedComponent.DequantBuffer => "dequant_buffer",
        ShardedComponent.Activations => "activations",
        ShardedComponent.ActivationGradients => "activation_gradients",
        ShardedComponent.Logits => "logits",
        ShardedComponent.Fragmentation => "fragmentation",
        ShardedComponent.OffloadedHost => "offloaded_host",
        _ => throw new ArgumentOutOfRangeException(nameof(c), c, "unknown sharded component"),
    };

    /// <summary>Device components in the order they are charged against the per-GPU budget (resident state first).</summary>
    public static IReadOnlyList<ShardedComponent> DeviceOrder { get; } =
    [
        ShardedComponent.RuntimeOverhead, ShardedComponent.ShardedWeights, ShardedComponent.QuantState,
        ShardedComponent.AdapterShards, ShardedComponent.OptimizerStates, ShardedComponent.Gradients,
        ShardedComponent.OptimizerStepTemp, ShardedComponent.GatheredUnits, ShardedComponent.CommBuffers,
        ShardedComponent.DequantBuffer, ShardedComponent.Activations, ShardedComponent.ActivationGradients,
        ShardedComponent.Logits, ShardedComponent.Fragmentation,
    ];
}
