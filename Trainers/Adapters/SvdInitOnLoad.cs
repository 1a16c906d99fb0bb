using QuantPeft.Memory.Planning;
using QuantPeft.Quant.LqLora;
using QuantPeft.Trainers.Adapters.Methods;
using QuantPeft.Trainers.Model;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;
using QuantPeft.Quant.Torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>The adapter initialisation one projection computed on load, kept until <see cref="ModelAdapters.Attach"/> takes it.</summary>
/// <param name="Method">The method it was computed for (PiSSA, OSoRA; LoRA on an LQ-LoRA base).</param>
/// <param name="First">PiSSA, LQ-LoRA: A [r, in]; OSoRA: U_r [out, r] (f32).</param>
/// <param name="Second">PiSSA, LQ-LoRA: B [out, r]; OSoRA: S_r [r] (f32).</param>
/// <param name="Third">OSoRA: V_rᵀ [r, in] (f32); null for PiSSA.</param>
public sealed record SvdInitFactors(TrainingMethod Method, Tensor First, Tensor Second, Tensor? Third) : IDisposable
{
    /// <inheritdoc />
    public void Dispose()
    {
        First.Dispose();
        Second.Dispose();
        Third?.Dispose();
    }
}

/// <summary>
/// The load-time hook for SVD-based adapters: stands in the projection's slot while the checkpoint streams in,
/// receives the full-precision weight, computes the PiSSA / OSoRA factors from it, and hands only the residual
/// to the real base (which a 4-bit base then quantizes: QPiSSA, OSoRA on NF4). The full-precision weight is
/// never stored. <see cref="ModelAdapters.Attach"/> replaces this module with the adapter over <see cref="Inner"/>.
/// </summary>
public sealed class SvdInitLinear : nn.Module<Tensor, Tensor>, ITensorLoadTarget, IQuantizedLoadTarget
{
    [ComponentName(Name = "base_layer")]
    private readonly nn.Module<Tensor, Tensor> _inner;

    private readonly TrainingMethod _method;
    private readonly LoadTimeInit _init;
    private readonly int _rank;
    private readonly double _scaling;
    private readonly LqQuantConfig? _lqConfig;

    /// <summary>Wraps <paramref name="inner"/> (a dense, 4-bit or LQ-LoRA base).</summary>
    /// <param name="inner">The base that will hold the residual.</param>
    /// <param name="method">The method whose adapter will take the factors.</param>
    /// <param name="init">Computes the residual and the factors from the full-precision weight (the method's <see cref="AdapterDescriptor.LoadInit"/>).</param>
    /// <param name="rank">r.</param>
    /// <param name="scaling">The LoRA scaling s of PiSSA and LQ-LoRA (A and B are divided by √s); ignored by OSoRA.</param>
    public SvdInitLinear(nn.Module<Tensor, Tensor> inner, TrainingMethod method, LoadTimeInit init, int rank, double scaling) : this(inner, method, init, rank, scaling, null)
    {
    }

    /// <summary>LQ-LoRA: the LoRA on <paramref name="inner"/> starts at L1·L2 of W ≈ Q + L1·L2 under <paramref name="lqConfig"/>.</summary>
    public static SvdInitLinear LqLora(nn.Module<Tensor, Tensor> inner, int rank, double scaling, LqQuantConfig lqConfig) =>
        new(inner, TrainingMethod.Lora, (w, r, s) => LqLoraInit(w, lqConfig, r, s), rank, scaling, lqConfig);

    private SvdInitLinear(nn.Module<Tensor, Tensor> inner, TrainingMethod method, LoadTimeInit init, int rank, double scaling, LqQuantConfig? lqConfig)
        : base(nameof(SvdInitLinear))
    {
        if (inner is not IBaseLinear)
            throw new AdapterException($"{Knob.Name(method)} needs a base implementing {nameof(IBaseLinear)}, got {inner.GetType().Name}");
        _lqConfig = lqConfig;
        _inner = inner;
        _method = method;
        _init = init;
        _rank = rank;
        _scaling = scaling;
        RegisterComponents();
    }

    /// <summary>The base that holds the residual.</summary>
    public nn.Module<Tensor, Tensor> Inner => _inner;

    /// <summary>The factors computed when the weight arrived, or null before loading (or after <see cref="TakeFactors"/>).</summary>
    public SvdInitFactors? Factors { get; private set; }

    /// <summary>Hands the factors over to the caller, which then owns them.</summary>
    /// <exception cref="AdapterException">The weight has not been loaded.</exception>
    public SvdInitFactors TakeFactors()
    {
        var f = Factors ?? throw new AdapterException($"{Knob.Name(_method)} initialisation needs the checkpoint weight; load the model before attaching adapters");
        Factors = null;
        return f;
    }

    /// <summary>The residual base's output (the function of W_res alone, before the adapter is attached).</summary>
    public override Tensor forward(Tensor x) => _inner.forward(x);

    /// <inheritdoc />
    public void LoadTensor(string localName, Tensor value)
    {
        if (localName != "weight")
        {
            Forward(localName, value);
            return;
        }
        var (residual, first, second, third) = _init(value, _rank, _scaling);
        var factors = new SvdInitFactors(_method, first, second, third);
        using (residual)
            Forward("weight", residual);
        Factors?.Dispose();
        // The factors outlive the loader's dispose scope: Attach builds the adapter from them later.
        factors.First.DetachFromDisposeScope();
        factors.Second.DetachFromDisposeScope();
        factors.Third?.DetachFromDisposeScope();
        Factors = factors;
    }

    /// <summary>
    /// LQ-LoRA from a checkpoint that already holds the decomposition: the stored factors give the LoRA's start exactly
    /// as a decomposition on load would (A = L2/√s, B = L1/√s, in f32), and the stored Q goes to the base as it is.
    /// </summary>
    /// <exception cref="AdapterException">The hook is for PiSSA/OSoRA (they need the full-precision weight), the weight is
    /// not an LQ-LoRA one, or its factors are not of this hook's rank.</exception>
    public void LoadQuantized(string localName, QuantizedWeight weight)
    {
        if (_lqConfig is null)
            throw new AdapterException($"{Knob.Name(_method)} computes its initialisation from the full-precision weight; this one is stored as {weight.Describe()}");
        if (localName != "weight" || weight is not LqLoraWeight lq)
            throw new AdapterException($"the LQ-LoRA load hook takes an LQ-LoRA 'weight', not '{localName}' stored as {weight.Describe()}");
        if (lq.L1.shape[1] != _rank)
            throw new AdapterException($"the stored factors L1, L2 have rank {lq.L1.shape[1]}, the LoRA rank is {_rank}");
        if (_inner is not IQuantizedLoadTarget target)
            throw new AdapterException($"{_inner.GetType().Name} cannot take a stored LQ-LoRA weight");
        target.LoadQuantized(localName, weight);
        using var scope = NewDisposeScope();
        double root = Math.Sqrt(_scaling);
        var a = lq.L2.to(ScalarType.Float32).Div(root).contiguous();
        var b = lq.L1.to(ScalarType.Float32).Div(root).contiguous();
        Factors?.Dispose();
        Factors = new SvdInitFactors(_method, a.DetachFromDisposeScope(), b.DetachFromDisposeScope(), null);
    }

    // W ≈ Q + L1·L2 under this matrix's configuration; the base gets W − L1·L2, which it quantizes to exactly the
    // decomposition's last Q (same input, same arithmetic). The LoRA starts at s·B·A = L1·L2.
    private static (Tensor Residual, Tensor First, Tensor Second, Tensor? Third) LqLoraInit(Tensor weight, LqQuantConfig config, int rank, double scaling)
    {
        using var scope = NewDisposeScope();
        using var result = LqDecomposition.Decompose(weight, config, rank, LqLoraPlan.MaxIterations, seed: LqLoraPlan.SvdSeed);
        var w = weight.detach().to(ScalarType.Float32);
        var residual = w.sub(result.L1.matmul(result.L2));
        double root = Math.Sqrt(scaling);
        var a = result.L2.Div(root).contiguous();
        var b = result.L1.Div(root).contiguous();
        return (residual.MoveToOuterDisposeScope(), a.MoveToOuterDisposeScope(), b.MoveToOuterDisposeScope(), null);
    }

    // A 4-bit base receives tensors itself; a dense base is a module with a `weight` (and `bias`) parameter.
    private void Forward(string localName, Tensor value)
    {
        if (_inner is ITensorLoadTarget target)
        {
            target.LoadTensor(localName, value);
            return;
        }
        var slot = _inner.named_parameters(recurse: false).Where(p => p.name == localName).Select(p => (Tensor)p.parameter).FirstOrDefault()
            ?? throw new AdapterException($"{_inner.GetType().Name} has no parameter '{localName}'");
        if (!slot.shape.SequenceEqual(value.shape))
            throw new AdapterException($"'{localName}': expected shape [{string.Join(", ", slot.shape)}], found [{string.Join(", ", value.shape)}]");
        using (no_grad())
            slot.copy_(value);
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) Factors?.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>Wraps a <see cref="LinearFactory"/> so that the target projections get an <see cref="SvdInitLinear"/> hook.</summary>
public static class SvdInitOnLoad
{
    /// <summary>
    /// The factory that builds <paramref name="inner"/>'s base for every projection and, for the projections named
    /// in <paramref name="targets"/> (e.g. <c>q_proj</c>), puts the load-time SVD hook in front of it.
    /// </summary>
    /// <exception cref="AdapterException"><paramref name="method"/> has no load-time initialisation.</exception>
    public static LinearFactory Wrap(LinearFactory inner, TrainingMethod method, int rank, double scaling, IReadOnlyList<string> targets)
    {
        var init = AdapterRegistry.Of(method).LoadInit ?? throw new AdapterException($"--method {Knob.Name(method)} has no initialisation computed on load");
        return (hfName, inFeatures, outFeatures, bias) =>
        {
            var module = inner(hfName, inFeatures, outFeatures, bias);
            string shortName = hfName[(hfName.LastIndexOf('.') + 1)..];
            return targets.Contains(shortName) ? new SvdInitLinear(module, method, init, rank, scaling) : module;
        };
    }
}
