using QuantPeft.Memory.Paging;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers;

/// <summary>Settings that pick how state is stored, shared by every group of one optimizer.</summary>
/// <param name="StateDType">Dense moment dtype for non-8-bit optimizers: Float32 (default) or BFloat16.</param>
/// <param name="BlockSize">8-bit block size: 256 (bitsandbytes ≥ 0.44) or 2048 (the 8-bit optimizers paper).</param>
/// <param name="Pager">Pager settings for the paged optimizers; null gives a 64 MiB budget on the
/// parameters' device with the default backing.</param>
public sealed record OptimizerBuildOptions(
    ScalarType StateDType = ScalarType.Float32,
    int BlockSize = 256,
    PagerOptions? Pager = null);
