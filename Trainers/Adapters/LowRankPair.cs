using TorchSharp;
using TorchSharp.Utils;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Adapters;

/// <summary>
/// The trainable pair A [r, in], B [out, r] shared by LoRA, PiSSA and DoRA. Default initialisation is
/// PEFT's: A kaiming-uniform (a = √5), B = 0, so the update B·A starts at exactly zero.
/// </summary>
internal sealed class LowRankPair : nn.Module
{
    [ComponentName(Name = "lora_A")]
    private readonly Linear _a;

    [ComponentName(Name = "lora_B")]
    private readonly Linear _b;

    public LowRankPair(long inFeatures, long outFeatures, int rank, ScalarType dtype, Device device, Tensor? initA = null, Tensor? initB = null)
        : base(nameof(LowRankPair))
    {
        _a = nn.Linear(inFeatures, rank, hasBias: false, device: device, dtype: dtype);
        _b = nn.Linear(rank, outFeatures, hasBias: false, device: device, dtype: dtype);
        using (torch.no_grad())
        {
            if (initA is null && device.type == DeviceType.CPU) nn.init.kaiming_uniform_(_a.weight!, a: Math.Sqrt(5));
            else if (initA is null)
            {
                // Drawn from the CPU generator and copied: a run starts from the same adapter on every device, and the
                // draw is part of the CPU generator state that checkpoints save (the CUDA generator's is not exposed).
                using var host = torch.empty(_a.weight!.shape, dtype, torch.CPU);
                nn.init.kaiming_uniform_(host, a: Math.Sqrt(5));
                _a.weight!.copy_(host);
            }
            else _a.weight!.copy_(initA);
            if (initB is null) _b.weight!.zero_();
            else _b.weight!.copy_(initB);
        }
        RegisterComponents();
    }

    public Tensor A => _a.weight!;

    public Tensor B => _b.weight!;

    /// <summary>B(A(x)) in the pair's dtype, cast back to the input's dtype.</summary>
    public Tensor Apply(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var xs = x.to(A.dtype);
        var y = _b.forward(_a.forward(xs)).to(x.dtype);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>B·A [out, in] in <paramref name="dtype"/> (a new tensor; f32 unless the pair is f64).</summary>
    public Tensor Delta(ScalarType? dtype = null)
    {
        using var scope = torch.NewDisposeScope();
        ScalarType t = dtype ?? (A.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32);
        return B.detach().to(t).matmul(A.detach().to(t)).MoveToOuterDisposeScope();
    }

    public Dictionary<string, Tensor> Tensors() => new() { ["lora_A.weight"] = A, ["lora_B.weight"] = B };
}
