namespace QuantPeft.Memory.Planning;

/// <summary>The data shape of one optimizer step.</summary>
/// <param name="Seq">Tokens per sequence (the longest sequence of a padded batch).</param>
/// <param name="GradAccum">Micro-batches accumulated per optimizer step.</param>
/// <param name="AdapterDropout">Dropout on the adapter input (LoRA-style); above 0 the dropped copy and its mask are kept for backward.</param>
public sealed record Workload(int Seq = 2048, int GradAccum = 1, double AdapterDropout = 0.0)
{
    /// <summary>
    /// Rows each example puts through one forward: 1 for SFT; 2 for a preference pair (DPO, ORPO), whose chosen and
    /// rejected answers go through the model in one batch, so a micro-batch of B pairs holds 2B sequences.
    /// </summary>
    public int RowsPerExample { get; init; } = 1;

    /// <summary>
    /// DPO with the adapter-off model as its reference: before the policy's forward, each micro-batch goes through the
    /// model once more with adapters off and without autograd, which keeps no activations (priced by
    /// <see cref="CostModel.PreferenceCost.ReferenceForward"/>). False for SFT, ORPO and a cached reference.
    /// </summary>
    public bool ReferenceForward { get; init; }

    /// <summary>
    /// Rows pack several examples kept apart (<c>--packing on</c>): every forward then carries a (B, 1, T, T) attention
    /// mask, priced by <see cref="CostModel.ActivationCost.PackedMaskBytes"/>. False for padded rows, which need none.
    /// </summary>
    public bool PackedRows { get; init; }
}

/// <summary>The memory the run may use and what the device costs before the first tensor.</summary>
public sealed record Budget
{
    /// <summary>Device memory budget in bytes (null: no limit). On a CPU device the device memory is <see cref="Ram"/>.</summary>
    public long? Vram { get; init; }

    /// <summary>Host memory budget for the host side of paged optimizer states, in bytes (null: no limit).</summary>
    public long? Ram { get; init; }

    /// <summary>Fixed runtime overhead in bytes (null: the default of <see cref="DeviceKind"/>; 0 compares with allocated-only figures).</summary>
    public long? Overhead { get; init; }

    /// <summary>The kind of device that trains.</summary>
    public DeviceKind DeviceKind { get; init; } = DeviceKind.Cuda;

    /// <summary>Allocator fragmentation margin as a fraction of the allocated peak (null: <see cref="DefaultFragmentation"/>).</summary>
    public double? Fragmentation { get; init; }

    /// <summary>
    /// Default fragmentation margin: 5 % of the allocated peak. PyTorch-style caching allocators typically hold a
    /// few percent more than the live tensors at the peak (blocks split and cached across steps); 5 % is a
    /// documented middle value, not fitted to any row.
    /// </summary>
    public const double DefaultFragmentation = 0.05;

    /// <summary>
    /// Default overhead per device kind. CUDA: 512 MiB context (reported 256–640 MiB with lazy module loading)
    /// plus 256 MiB caching-allocator reserve and library workspaces (cuBLAS). CPU: 256 MiB for the native
    /// runtime (libtorch, the .NET runtime) resident before the model loads.
    /// </summary>
    public static long DefaultOverhead(DeviceKind kind) => kind switch
    {
        DeviceKind.Cuda => 768L << 20,
        _ => 256L << 20,
    };

    /// <summary>The overhead in effect.</summary>
    public long EffectiveOverhead => Overhead ?? DefaultOverhead(DeviceKind);

    /// <summary>The fragmentation margin in effect.</summary>
    public double EffectiveFragmentation => Fragmentation ?? DefaultFragmentation;

    /// <summary>The budget that device-resident bytes are checked against (VRAM on CUDA, RAM on CPU).</summary>
    public long? DeviceLimit => DeviceKind == DeviceKind.Cpu ? Ram : Vram;
}
