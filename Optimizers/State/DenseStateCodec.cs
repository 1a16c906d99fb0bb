using static TorchSharp.torch;

namespace QuantPeft.Optimizers.State;

/// <summary>Moments stored densely in f32 (the default) or bf16 (half the bytes, ~3 significant digits).</summary>
public sealed class DenseStateCodec : IOptimizerStateCodec
{
    private readonly ScalarType _dtype;

    /// <summary>Creates the codec; <paramref name="dtype"/> must be Float32 or BFloat16.</summary>
    /// <exception cref="OptimizerConfigException">Another dtype.</exception>
    public DenseStateCodec(ScalarType dtype = ScalarType.Float32)
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16))
            throw new OptimizerConfigException($"optimizer state dtype must be float32 or bfloat16, found {dtype}");
        _dtype = dtype;
    }

    /// <inheritdoc />
    public string Name => _dtype == ScalarType.Float32 ? "f32" : "bf16";

    /// <inheritdoc />
    public bool ZeroMomentsOnNonFiniteGradient => false;

    /// <inheritdoc />
    public IMomentState Create(string name, long[] shape, bool signed, Device device, IStateAllocator allocator) =>
        new Dense(allocator.Allocate(name, shape, _dtype, device));

    private sealed class Dense(IStateTensor tensor) : IMomentState
    {
        public IReadOnlyList<IStateTensor> Tensors { get; } = [tensor];

        public Tensor Decode() => tensor.Value.to(ScalarType.Float32, copy: true);

        public void Encode(Tensor value) => tensor.Value.copy_(value);
    }
}
