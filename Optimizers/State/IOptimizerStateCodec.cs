using static TorchSharp.torch;

namespace QuantPeft.Optimizers.State;

/// <summary>How an Adam moment is stored: dense (f32 or bf16) or 8-bit blockwise with a dynamic map.</summary>
public interface IOptimizerStateCodec
{
    /// <summary>A short name for reports (<c>f32</c>, <c>bf16</c>, <c>8bit-b256</c>).</summary>
    string Name { get; }

    /// <summary>
    /// Creates the storage of one moment. <paramref name="signed"/> selects the signed map (first moment)
    /// or the unsigned one (second moment, never negative).
    /// </summary>
    IMomentState Create(string name, long[] shape, bool signed, Device device, IStateAllocator allocator);

    /// <summary>True when the bitsandbytes non-finite rule applies (zero m and v, skip the element).</summary>
    bool ZeroMomentsOnNonFiniteGradient { get; }
}

/// <summary>One stored moment: decoded to f32 for the update, encoded back after it.</summary>
public interface IMomentState
{
    /// <summary>The tensors that hold the moment (for paging, the state dict and byte counts).</summary>
    IReadOnlyList<IStateTensor> Tensors { get; }

    /// <summary>The moment as a new f32 tensor of the parameter-side shape.</summary>
    Tensor Decode();

    /// <summary>Stores <paramref name="value"/> (f32, the moment's shape), replacing the old content.</summary>
    void Encode(Tensor value);
}
