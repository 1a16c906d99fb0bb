namespace QuantPeft.Memory.CostModel;

/// <summary>The predicted memory of one rank of an FSDP-sharded plan: its device peak with the breakdown, and the host share.</summary>
public sealed class ShardedEstimate
{
    /// <summary>The sharding it was priced for.</summary>
    public required FsdpLayout Layout { get; init; }

    /// <summary>Bytes on one GPU by component at the peak phase (components not alive then are 0).</summary>
    public required IReadOnlyDictionary<ShardedComponent, long> Device { get; init; }

    /// <summary>Host bytes of all ranks together (parameter offload), 0 without offload.</summary>
    public required long HostBytes { get; init; }

    /// <summary><c>backward</c> or <c>optimizer-step</c>.</summary>
    public required string PeakPhase { get; init; }

    /// <summary>Predicted peak of one GPU: the sum of <see cref="Device"/>.</summary>
    public long PeakBytes => Device.Values.Sum();

    /// <summary>The peak without runtime overhead and fragmentation: what <c>max_memory_allocated()</c> would report on one rank.</summary>
    public long AllocatedBytes => PeakBytes - Device[ShardedComponent.RuntimeOverhead] - Device[ShardedComponent.Fragmentation];

    /// <summary>The caching allocator's view (<c>max_memory_reserved()</c>): allocated plus the fragmentation margin, without the CUDA context.</summary>
    public long ReservedBytes => AllocatedBytes + Device[ShardedComponent.Fragmentation];
}
