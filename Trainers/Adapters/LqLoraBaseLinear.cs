using QuantPeft.Quant.LqLora;
using QuantPeft.Trainers.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// The frozen LQ-LoRA base: the projection's Q stored as packed NF-k codes under the configuration the bit
/// allocator chose for it (<see cref="LqQuantizedMatrix"/>), decoded slab by slab in forward and backward.
/// It receives what the loader hands it (W − L1·L2 from <see cref="SvdInitLinear"/>, or W for a projection
/// without an adapter) and quantizes it; the dense tensor is not kept. From an LQ-LoRA checkpoint it takes the stored
/// Q as it is (<see cref="LoadQuantized"/>).
/// </summary>
public sealed class LqLoraBaseLinear : nn.Module<Tensor, Tensor>, IBaseLinear, ITensorLoadTarget, IQuantizedLoadTarget
{
    private readonly LqQuantConfig _config;
    private readonly ScalarType _computeDType;
    private readonly Device _device;
    private LqQuantizedMatrix? _weight;
    private readonly FrozenBias _bias;

    /// <summary>Creates an empty base of shape [<paramref name="outFeatures"/>, <paramref name="inFeatures"/>].</summary>
    public LqLoraBaseLinear(long inFeatures, long outFeatures, LqQuantConfig config, ScalarType computeDType = ScalarType.BFloat16, Device? device = null)
        : base(nameof(LqLoraBaseLinear))
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        _config = config;
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

    /// <summary>The configuration this projection is stored in.</summary>
    public LqQuantConfig Config => _config;

    /// <summary>The stored Q, or null before loading.</summary>
    public LqQuantizedMatrix? Weight => _weight;

    /// <summary>Bytes the base holds (packed codes, scales, bias).</summary>
    public long StorageBytes => (_weight?.StorageBytes ?? 0) + _bias.Bytes;

    /// <inheritdoc />
    public bool SupportsMerge => false;

    /// <inheritdoc />
    public void LoadTensor(string localName, Tensor value)
    {
        switch (localName)
        {
            case "weight":
                if (value.dim() != 2 || value.shape[0] != OutFeatures || value.shape[1] != InFeatures)
                    throw new AdapterException($"'weight': expected shape [{OutFeatures}, {InFeatures}], found [{string.Join(", ", value.shape)}]");
                using (var f32 = value.detach().to(_device).to(ScalarType.Float32))
                {
                    var quantized = LqQuantizedMatrix.Quantize(f32, _config);
                    _weight?.Dispose();
                    _weight = quantized;
                }
                break;
            case "bias":
                _bias.Load(value);
                break;
            default:
                throw new AdapterException($"an LQ-LoRA base linear has no tensor '{localName}' (expected weight or bias)");
        }
    }

    /// <summary>Takes the Q of an LQ-LoRA checkpoint as this base's weight, code for code (the factors are the load hook's).</summary>
    /// <exception cref="AdapterException">Not an LQ-LoRA weight, or another shape or configuration than the base's.</exception>
    public void LoadQuantized(string localName, QuantizedWeight weight)
    {
        if (localName != "weight" || weight is not LqLoraWeight lq)
            throw new AdapterException($"an LQ-LoRA base linear takes an LQ-LoRA 'weight', not '{localName}' stored as {weight.Describe()}");
        var q = lq.Quantized;
        if (q.Shape.Length != 2 || q.Shape[0] != OutFeatures || q.Shape[1] != InFeatures)
            throw new AdapterException($"expected shape [{OutFeatures}, {InFeatures}], found [{string.Join(", ", q.Shape)}]");
        if (q.Config != _config)
            throw new AdapterException($"stored as {q.Config}, but quantization_config.matrices declares {_config}");
        LqQuantizedMatrix stored;
        if (q.Codes.device.type == _device.type && q.Codes.device.index == _device.index)
        {
            stored = LqQuantizedMatrix.FromCodes(q, weight.Name);
        }
        else
        {
            using var moved = new LqCodes(q.Config, q.Shape, q.Codes.to(_device), q.ScaleCodes.to(_device), q.Offset, q.SecondLevel.to(_device), weight.Name);
            stored = LqQuantizedMatrix.FromCodes(moved, weight.Name);
        }
        _weight?.Dispose();
        _weight = stored;
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => _bias.Forward(x, ForwardNoBias);

    /// <inheritdoc />
    public Tensor ForwardNoBias(Tensor x)
    {
        var weight = Loaded();
        // Slabs of whole quantization groups, about 64 rows or more.
        long slab = Math.Max(weight.RowAlignment, (64 / weight.RowAlignment) * weight.RowAlignment);
        using var scope = NewDisposeScope();
        return LqLinearFunction.apply(x, weight, _computeDType, slab).to(x.dtype).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public Tensor DenseWeight(ScalarType dtype) => Loaded().Dequantize(dtype);

    /// <inheritdoc />
    public void AddToWeight(Tensor delta) =>
        throw new AdapterException("cannot add to an LQ-LoRA base weight; merge into the dense checkpoint instead");

    private LqQuantizedMatrix Loaded() =>
        _weight ?? throw new AdapterException($"LQ-LoRA base [{OutFeatures}, {InFeatures}] used before its weight was loaded");

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
