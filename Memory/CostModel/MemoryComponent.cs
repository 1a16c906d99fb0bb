namespace QuantPeft.Memory.CostModel;

/// <summary>One term of the memory breakdown. JSON names are the snake_case forms (see <see cref="MemoryComponents.JsonName"/>).</summary>
public enum MemoryComponent
{
    /// <summary>CUDA context, allocator reserve and library workspaces (or the CPU runtime's resident set).</summary>
    RuntimeOverhead,
    /// <summary>Base model weights in their storage format, with quantization state.</summary>
    BaseWeights,
    /// <summary>Adapter tensors, trainable and frozen (VeRA's shared matrices, OSoRA's U and V).</summary>
    AdapterWeights,
    /// <summary>Gradients of the trainable parameters.</summary>
    Gradients,
    /// <summary>Device-resident optimizer states (including GaLore projectors).</summary>
    OptimizerStates,
    /// <summary>Temporaries of the optimizer step.</summary>
    OptimizerStepTemp,
    /// <summary>Tensors the forward keeps for backward, in all decoder layers.</summary>
    Activations,
    /// <summary>Gradients of activations alive while one layer runs backward.</summary>
    ActivationGradients,
    /// <summary>Logits and the loss's intermediate tensors.</summary>
    Logits,
    /// <summary>One dequantized weight matrix in bf16.</summary>
    DequantBuffer,
    /// <summary>
    /// On the CPU only, where the host is the device: the loader's staging of the largest tensor while the base streams
    /// in (<see cref="WeightCost.LoadStaging"/>); priced in a load phase of its own.
    /// </summary>
    LoadStaging,
    /// <summary>Allocator fragmentation margin.</summary>
    Fragmentation,
    /// <summary>Host-side share of paged optimizer states (checked against the RAM budget).</summary>
    PagedStatesHost,
}

/// <summary>Names of <see cref="MemoryComponent"/> values.</summary>
public static class MemoryComponents
{
    /// <summary>Stable snake_case name used in JSON and reports.</summary>
    public static string JsonName(this MemoryComponent c) => c switch
    {
        MemoryComponent.RuntimeOverhead => "runtime_overhead",
        MemoryComponent.BaseWeights => "base_weights",
        MemoryComponent.AdapterWeights => "adapter_weights",
        MemoryComponent.Gradients => "gradients",
        MemoryComponent.OptimizerStates => "optimizer_states",
        MemoryComponent.OptimizerStepTemp => "optimizer_step_temp",
        MemoryComponent.Activations => "activations",
        MemoryComponent.ActivationGradients => "activation_gradients",
        MemoryComponent.Logits => "logits",
        MemoryComponent.DequantBuffer => "dequant_buffer",
        MemoryComponent.LoadStaging => "load_staging",
        MemoryComponent.Fragmentation => "fragmentation",
        MemoryComponent.PagedStatesHost => "paged_states_host",
        _ => throw new ArgumentOutOfRangeException(nameof(c), c, "unknown memory component"),
    };

    /// <summary>Device components in the order they are charged against the budget (fixed costs first).</summary>
    public static IReadOnlyList<MemoryComponent> DeviceOrder { get; } =
    [
        MemoryComponent.RuntimeOverhead, MemoryComponent.BaseWeights, MemoryComponent.AdapterWeights,
        MemoryComponent.OptimizerStates, MemoryComponent.Gradients, MemoryComponent.OptimizerStepTemp,
        MemoryComponent.DequantBuffer, MemoryComponent.Activations, MemoryComponent.ActivationGradients,
        MemoryComponent.Logits, MemoryComponent.LoadStaging, MemoryComponent.Fragmentation,
    ];
}
