using QuantPeft.Quant.Codecs;
using QuantPeft.Quant.Torch;
using QuantPeft.Trainers.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// A frozen 4-bit (NF4 / FP4, optionally double-quantized) projection that adapters wrap: the QLoRA base.
/// The weight lives only as a <see cref="QuantizedTensor"/>; each forward dequantizes it to the compute dtype,
/// which is a constant to autograd, so gradients flow to the input (and on to the adapter) but never to the base.
/// </summary>
/// <remarks>
/// Built empty by the model's linear factory and filled by the checkpoint loader through
/// <see cref="ITensorLoadTarget"/>: the bf16 checkpoint tensor is quantized on the way in and dropped, so the
/// full-precision weight never stays resident. The dequantized copy of one forward lives until backward has
/// used it, which bounds the extra memory to one layer's dense weights per projection in flight.
/// </remarks>
public sealed partial class QuantizedBaseLinear : nn.Module<Tensor, Tensor>, IBaseLinear, ITensorLoadTarget
{
    private readonly FourBitType _format;
    private readonly bool _doubleQuant;
    private readonly int _blockSize;
    private readonly ScalarType _computeDType;
    private readonly Device _device;
    private QuantizedTensor? _weight;
    private readonly FrozenBias _bias;

    /// <summary>Creates an empty base of shape [<paramref name="outFeatures"/>, <paramref name="inFeatures"/>]; load its weight with <see cref="LoadTensor"/> or <see cref="SetWeight"/>.</summary>
    /// <param name="inFeatures">Input width.</param>
    /// <param name="outFeatures">Output width.</param>
    /// <param name="format">NF4 or FP4.</param>
    /// <param name="doubleQuant">Quantize the block scales too (bitsandbytes' <c>compress_statistics</c>).</param>
    /// <param name="computeDType">Dtype of the dequantized weight and of the activations.</param>
    /// <param name="device">Where the codes live; null means the CPU.</param>
    /// <param name="blockSize">Elements per absmax block.</param>
    public QuantizedBaseLinear(long inFeatures, long outFeatures, FourBitType format, bool doubleQuant,
        ScalarType computeDType = ScalarType.BFloat16, Device? device = null, int blockSize = FourBitQuantizer.DefaultBlockSize)
        : base(nameof(QuantizedBaseLinear))
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        _format = format;
        _doubleQuant = doubleQuant;
        _blockSize = blockSize;
        _computeDType = computeDType;
        _device = device ?? CPU;
        _bias = new FrozenBias(outFeatures, _device, computeDType);
        RegisterComponents();
    }

    /// <inheritdoc />
    public long InFeatures { get; }

    /// <inheritdoc />
    public long OutFeatures { get; }

    /// <inheritdoc />
    public Device Device => _device;

    /// <inheritdoc />
    public Tensor? Bias => _bias.Value;

    /// <summary>The quantized weight, or null before loading.</summary>
    public QuantizedTensor? Weight => _weight;

    /// <summary>Bytes the base holds (codes, scales, bias).</summary>
    public long StorageBytes => (_weight?.StorageBytes ?? 0) + _bias.Bytes;

    /// <inheritdoc />
    public bool SupportsMerge => false;

    /// <summary>Quantizes <paramref name="weight"/> [out, in] into this base (the input is not kept or disposed).</summary>
    /// <exception cref="AdapterException">The shape differs from the base's.</exception>
    public void SetWeight(Tensor weight, string name = "weight")
    {
        if (weight.dim() != 2 || weight.shape[0] != OutFeatures || weight.shape[1] != InFeatures)
            throw new AdapterException($"'{name}': expected shape [{OutFeatures}, {InFeatures}], found [{string.Join(", ", weight.shape)}]");
        using var scope = NewDisposeScope();
        // A host weight (the checkpoint streams from a host mmap) is quantized on the host by the SIMD codec and only
        // the codes and statistics go to the device: the full-precision weight is never resident there. The host and
        // torch-op paths give the same bytes (FourBitQuantizer), so where it is quantized changes no value.
        bool onHost = weight.device.type == DeviceType.CPU;
        var source = (onHost ? weight : weight.to(_device)).to(_computeDType);
        var quantized = FourBitQuantizer.Quantize(source, _format, _blockSize, _doubleQuant, name);
        if (!SameDevice(quantized.Device, _device))
        {
            var uploaded = quantized.to(_device);
            quantized.Dispose();
            quantized = uploaded;
        }
        _weight?.Dispose();
        _weight = quantized;
    }

    private static bool SameDevice(Device a, Device b) => a.type == b.type && (a.type == DeviceType.CPU || a.index == b.index);

    /// <inheritdoc />
    public void LoadTensor(string localName, Tensor value)
    {
        switch (localName)
        {
            case "weight":
                SetWeight(value);
                break;
            case "bias":
                _bias.Load(value);
                break;
            default:
                throw new AdapterException($"a 4-bit base linear has no tensor '{localName}' (expected weight or bias)");
        }
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => _bias.Forward(x, ForwardNoBias);

    /// <inheritdoc />
    public Tensor ForwardNoBias(Tensor x)
    {
        // The 4-bit autograd function decodes W in forward and again in backward, so no dequantized weight
        // stays alive between the two (a plain linear over a dequantized copy would keep it for backward).
        var weight = _weight ?? throw new AdapterException($"4-bit base [{OutFeatures}, {InFeatures}] used before its weight was loaded");
        using var scope = NewDisposeScope();
        return Linear4bit.Apply(x, weight, null, _computeDType, weight.ChunkRowsForDevice()).to(x.dtype).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    /// <exception cref="AdapterException">No weight has been loaded.</exception>
    public Tensor DenseWeight(ScalarType dtype)
    {
        var weight = _weight ?? throw new AdapterException($"4-bit base [{OutFeatures}, {InFeatures}] used before its weight was loaded");
        return weight.Dequantize(dtype);
    }

    /// <inheritdoc />
    /// <exception cref="AdapterException">No weight has been loaded.</exception>
    public void CopyRowsInto(long start, Tensor destination)
    {
        var weight = _weight ?? throw new AdapterException($"4-bit base [{OutFeatures}, {InFeatures}] used before its weight was loaded");
        weight.DequantizeRowsInto(start, destination);
    }

    /// <inheritdoc />
    /// <exception cref="AdapterException">No weight has been loaded.</exception>
    public Tensor DenseRows(long start, long count, ScalarType dtype)
    {
        var weight = _weight ?? throw new AdapterException($"4-bit base [{OutFeatures}, {InFeatures}] used before its weight was loaded");
        return weight.DequantizeRows(start, count, dtype);
    }

    /// <inheritdoc />
    public void AddToWeight(Tensor delta) =>
        throw new AdapterException("cannot add to a 4-bit base weight; merge into the dense checkpoint instead");

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _weight?.Dispose();
            _weight = null;
            _bias.Dispose();
        }
        base.Dispose(disposing);
    }
}
