using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Model;

/// <summary>
/// The gated feed-forward block (<c>mlp</c>): down(act(gate(x)) ⊙ up(x)), act = SiLU (SwiGLU) or tanh GELU (GeGLU). Phi-3 has
/// one fused <c>gate_up_proj</c> whose first half of output columns is the gate and second half the up projection.
/// </summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "gate_proj")] private nn.Module<Tensor, Tensor>? _gateProj;
    [ComponentName(Name = "up_proj")] private nn.Module<Tensor, Tensor>? _upProj;
    [ComponentName(Name = "gate_up_proj")] private nn.Module<Tensor, Tensor>? _gateUpProj;
    [ComponentName(Name = "down_proj")] private nn.Module<Tensor, Tensor> _downProj;

    private readonly bool _tanhGelu;
    private readonly long _intermediate;

    /// <summary>
    /// Creates the MLP; <paramref name="prefix"/> is e.g. <c>model.layers.3.mlp</c>. <paramref name="tanhGelu"/> selects GeGLU with
    /// the tanh-approximated GELU (Gemma's <c>gelu_pytorch_tanh</c>) instead of SwiGLU; <paramref name="fusedGateUp"/> builds Phi-3's
    /// single <c>gate_up_proj</c>.
    /// </summary>
    public Mlp(string prefix, long hidden, long intermediate, LinearFactory linear, bool tanhGelu = false, bool fusedGateUp = false) : base(nameof(Mlp))
    {
        _tanhGelu = tanhGelu;
        _intermediate = intermediate;
        if (fusedGateUp)
        {
            _gateUpProj = linear($"{prefix}.gate_up_proj", hidden, 2 * intermediate, false);
        }
        else
        {
            _gateProj = linear($"{prefix}.gate_proj", hidden, intermediate, false);
            _upProj = linear($"{prefix}.up_proj", hidden, intermediate, false);
        }
        _downProj = linear($"{prefix}.down_proj", intermediate, hidden, false);
        RegisterComponents();
    }

    /// <summary>x (B, T, H) → (B, T, H).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor gate, up;
        if (_gateUpProj is null)
        {
            gate = _gateProj!.call(x);                                          // (B, T, I)
            up = _upProj!.call(x);
        }
        else
        {
            var both = _gateUpProj.call(x);                                     // (B, T, 2I): gate first, as transformers' chunk(2)
            gate = both.narrow(-1, 0, _intermediate);
            up = both.narrow(-1, _intermediate, _intermediate);
        }
        var act = _tanhGelu ? nn.functional.gelu(gate, TorchSharp.Modules.GELU.Approximate.tanh) : nn.functional.silu(gate);
        var gated = act * up;                                                   // (B, T, I)
        return _downProj.call(gated).MoveToOuterDisposeScope();
    }

    /// <summary>The projection registered under <paramref name="name"/> (<c>gate_proj</c>, <c>up_proj</c>, <c>down_proj</c>; Phi-3: <c>gate_up_proj</c>, <c>down_proj</c>).</summary>
    public nn.Module<Tensor, Tensor> GetProjection(string name) => name switch
    {
        "gate_proj" when _gateProj is not null => _gateProj,
        "up_proj" when _upProj is not null => _upProj,
        "gate_up_proj" when _gateUpProj is not null => _gateUpProj,
        "down_proj" => _downProj,
        _ => throw new ArgumentException($"mlp has no projection '{name}' (expected {(_gateUpProj is null ? "gate_proj, up_proj" : "gate_up_proj")} or down_proj)", nameof(name)),
    };

    /// <summary>Puts <paramref name="module"/> in place of the projection <paramref name="name"/>; the old one is returned, not disposed.</summary>
    public nn.Module<Tensor, Tensor> ReplaceProjection(string name, nn.Module<Tensor, Tensor> module)
    {
        var old = GetProjection(name);
        switch (name)
        {
            case "gate_proj": _gateProj = module; break;
            case "up_proj": _upProj = module; break;
            case "gate_up_proj": _gateUpProj = module; break;
            default: _downProj = module; break;
        }
        ProjectionSlots.Reregister(this, name, module, register_module, _internal_submodules.clear);
        return old;
    }
}
