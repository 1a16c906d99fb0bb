namespace QuantPeft.Memory.CostModel;

/// <summary>
/// How a multi-GPU engine shards one training run with FSDP full sharding (ZeRO-3): every parameter, gradient and
/// optimizer state is split across <see cref="Gpus"/> ranks, and each decoder layer is gathered whole only while it runs.
/// </summary>
/// <param name="Gpus">Data-parallel ranks sharing the model (at least 2).</param>
/// <param name="OffloadParams">
/// FSDP's CPU offload of parameters (<c>offload_params</c>): the sharded parameters, their gradients and the optimizer
/// states live in host memory and the optimizer steps on the CPU; the device keeps only what a layer needs while it runs.
/// </param>
public sealed record FsdpLayout(int Gpus, bool OffloadParams = false)
{
    /// <summary>The ranks, validated.</summary>
    public int Gpus { get; init; } = Gpus >= 2 ? Gpus : throw new ArgumentOutOfRangeException(nameof(Gpus), Gpus, "FSDP sharding needs at least 2 GPUs");
}
