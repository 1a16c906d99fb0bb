using QuantPeft.Trainers.Adapters;
using TorchSharp;
using static TorchSharp.torch;
using static QuantPeft.Trainers.Tests.Adapters.AdapterTestData;

namespace QuantPeft.Trainers.Tests.Adapters;

public class VeraDoraTests
{
    [Fact]
    public void VeraStartsAsIdentityUpdateSharesItsMatricesAndTrainsROutValues()
    {
        using var shared = new VeraSharedMatrices(rank: 4, maxInFeatures: 12, maxOutFeatures: 20, seed: 42);
        using var w1 = Randn(1, ScalarType.Float32, 20, 12);
        using var w2 = Randn(2, ScalarType.Float32, 8, 12);
        using var x = Randn(3, ScalarType.Float32, 2, 12);
        using var l1 = new VeraLinear(new DenseLinear(w1.clone()), shared);
        using var l2 = new VeraLinear(new DenseLinear(w2.clone()), shared);
        using var y = l1.forward(x);
        using var expected = x.matmul(w1.t());
        Assert.Equal(0.0, MaxAbsDiff(y, expected));
        Assert.Equal(4 + 20, l1.TrainableParameterCount);
        Assert.Equal(4 + 8, l2.TrainableParameterCount);
        // The same seed rebuilds the same frozen matrices.
        using var again = new VeraSharedMatrices(4, 12, 20, 42);
        Assert.Equal(0.0, MaxAbsDiff(shared.A, again.A));
        Assert.Equal(0.0, MaxAbsDiff(shared.B, again.B));
        // PEFT's VeRA bound for A is √(6/fan_in) = √(6/12), for B √(6/r) = √(6/4); 48 and 80 uniform draws
        // reach past half the bound with overwhelming probability.
        Assert.True(MaxAbs(shared.A) <= Math.Sqrt(6.0 / 12) && MaxAbs(shared.A) > 0.5 * Math.Sqrt(6.0 / 12));
        Assert.True(MaxAbs(shared.B) <= Math.Sqrt(6.0 / 4) && MaxAbs(shared.B) > 0.5 * Math.Sqrt(6.0 / 4));
    }

    [Fact]
    public void VeraForwardAndMergeEqualTheExplicitUpdate()
    {
        using var shared = new VeraSharedMatrices(3, 7, 9, seed: 5, dtype: ScalarType.Float64);
        using var w = Randn(1, ScalarType.Float64, 6, 5);
        using var x = Randn(3, ScalarType.Float64, 4, 5);
        using var layer = new VeraLinear(new DenseLinear(w.clone()), shared);
        using (torch.no_grad())
        {
            using var b = Randn(4, ScalarType.Float64, 6);
            layer.LambdaB.copy_(b);
        }
        using var a = shared.A.narrow(1, 0, 5);
        using var bm = shared.B.narrow(0, 0, 6);
        using var delta = bm.mul(layer.LambdaD.detach().unsqueeze(0)).matmul(a).mul(layer.LambdaB.detach().unsqueeze(1));
        using var expected = x.matmul(w.add(delta).t());
        using var y = layer.forward(x);
        Assert.True(MaxAbsDiff(y, expected) < 1e-10);
        layer.Merge();
        using var merged = layer.forward(x);
        Assert.True(MaxAbsDiff(merged, expected) < 1e-5);
    }

    [Fact]
    public void DoraStartsUnchangedWithRowNormMagnitudes()
    {
        using var w = Randn(1, ScalarType.Float32, 10, 6);
        using var bias = Randn(2, ScalarType.Float32, 10);
        using var x = Randn(3, ScalarType.Float32, 4, 6);
        using var layer = new DoraLinear(new DenseLinear(w.clone(), bias.clone()), new LoraOptions(2, 4));
        using var norms = w.pow(2).sum(1).sqrt();
        Assert.True(MaxAbsDiff(layer.Magnitude, norms) < 1e-5);
        using var y = layer.forward(x);
        using var expected = nn.functional.linear(x, w, bias);
        Assert.True(MaxAbsDiff(y, expected) < 1e-5);
        Assert.Equal(2 * 6 + 10 * 2 + 10, layer.TrainableParameterCount);
    }

    [Fact]
    public void DoraForwardEqualsTheNormalisedAdaptedWeightAndMergesAndUnmerges()
    {
        using var w = Randn(1, ScalarType.Float64, 8, 5);
        using var x = Randn(3, ScalarType.Float64, 4, 5);
        var dense = new DenseLinear(w.clone());
        using var layer = new DoraLinear(dense, new LoraOptions(2, 4), ScalarType.Float64);
        var t = layer.AdapterTensors();
        using (torch.no_grad())
        {
            using var b = Randn(4, ScalarType.Float64, 8, 2);
            using var m = Randn(5, ScalarType.Float64, 8);
            t["lora_B.weight"].copy_(b);
            t["lora_magnitude_vector"].copy_(m.abs().add(0.5));
        }
        // Independent: W' = m ⊙ (W + s·BA) / ‖W + s·BA‖_row.
        using var adapted = w.add(t["lora_B.weight"].detach().matmul(t["lora_A.weight"].detach()).mul(2.0));
        using var wPrime = adapted.div(adapted.pow(2).sum(1, keepdim: true).sqrt()).mul(layer.Magnitude.detach().unsqueeze(1));
        using var expected = x.matmul(wPrime.t());
        using var y = layer.forward(x);
        Assert.True(MaxAbsDiff(y, expected) < 1e-10);
        layer.Merge();
        using var merged = layer.forward(x);
        Assert.True(MaxAbsDiff(merged, expected) < 1e-5);
        layer.Unmerge();
        Assert.True(MaxAbsDiff(dense.Weight, w) < 1e-5);
    }

    [Fact]
    public void DoraMagnitudeReceivesAGradient()
    {
        using var w = Randn(1, ScalarType.Float32, 6, 4);
        using var x = Randn(3, ScalarType.Float32, 2, 4);
        using var layer = new DoraLinear(new DenseLinear(w.clone()), new LoraOptions(2, 4));
        using var loss = layer.forward(x).pow(2).sum();
        loss.backward();
        Assert.NotNull(layer.Magnitude.grad);
        Assert.True(MaxAbs(layer.Magnitude.grad!) > 0);
    }

    [Fact]
    public void DoraGradientsEqualTheDetachedNormFormula()
    {
        // y = x·W'ᵀ with W' = m ⊙ V / ‖V‖_row, V = W + s·BA and ‖V‖ a constant in backward (DoRA §4.3), written out here.
        using var w = Randn(1, ScalarType.Float64, 7, 5);
        using var bias = Randn(9, ScalarType.Float64, 7);
        using var xData = Randn(3, ScalarType.Float64, 2, 3, 5);
        using var g = Randn(6, ScalarType.Float64, 2, 3, 7);
        using var layer = new DoraLinear(new DenseLinear(w.clone(), bias.clone()), new LoraOptions(2, 4), ScalarType.Float64);
        var t = layer.AdapterTensors();
        using (torch.no_grad())
        {
            using var b = Randn(4, ScalarType.Float64, 7, 2);
            using var m = Randn(5, ScalarType.Float64, 7);
            t["lora_B.weight"].copy_(b);
            t["lora_magnitude_vector"].copy_(m.abs().add(0.5));
        }
        using var x = xData.clone().requires_grad_(true);
        using var y = layer.forward(x);
        y.backward([g]);

        using var a2 = t["lora_A.weight"].detach().clone().requires_grad_(true);
        using var b2 = t["lora_B.weight"].detach().clone().requires_grad_(true);
        using var m2 = t["lora_magnitude_vector"].detach().clone().requires_grad_(true);
        using var x2 = xData.clone().requires_grad_(true);
        using var v = w.add(b2.matmul(a2).mul(2.0));
        using var norm = v.detach().pow(2).sum(1, keepdim: true).sqrt();
        using var wPrime = v.div(norm).mul(m2.unsqueeze(1));
        using var expected = nn.functional.linear(x2, wPrime, bias);
        expected.backward([g]);
        Assert.True(MaxAbsDiff(y, expected) < 1e-10);
        Assert.True(MaxAbsDiff(x.grad!, x2.grad!) < 1e-10);
        Assert.True(MaxAbsDiff(t["lora_A.weight"].grad!, a2.grad!) < 1e-10);
        Assert.True(MaxAbsDiff(t["lora_B.weight"].grad!, b2.grad!) < 1e-10);
        Assert.True(MaxAbsDiff(t["lora_magnitude_vector"].grad!, m2.grad!) < 1e-10);
    }

    [Fact]
    public void DoraOnA4BitBaseComputesItsNormsSlabBySlabAsOnTheDequantizedWeight()
    {
        // 2¹⁵ columns: 32 rows per norm slab, so the 48 rows take two slabs, the second one partial.
        const long inF = 1 << 15, outF = 48;
        Assert.Equal(32, DoraLinear.NormSlabRows(inF));
        manual_seed(11);
        using var w = randn(outF, inF);
        var q = new QuantPeft.Trainers.Adapters.QuantizedBaseLinear(inF, outF, QuantPeft.Quant.Codecs.FourBitType.Nf4, true, ScalarType.Float32);
        q.LoadTensor("weight", w);
        using var wq = q.DenseWeight(ScalarType.Float32);
        using var rows = ((IBaseLinear)q).DenseRows(32, 16, ScalarType.Float32);
        Assert.True(rows.equal(wq.narrow(0, 32, 16)).all().item<bool>());

        using var onQuantized = new DoraLinear(q, new LoraOptions(4, 8));
        using var onDense = new DoraLinear(new DenseLinear(wq.clone()), new LoraOptions(4, 8));
        using var norms = wq.pow(2).sum(1).sqrt();
        Assert.True(MaxAbsDiff(onQuantized.Magnitude, norms) < 1e-3);
        using (torch.no_grad())
        {
            using var b = randn(outF, 4);
            onQuantized.AdapterTensors()["lora_B.weight"].copy_(b);
            onDense.AdapterTensors()["lora_B.weight"].copy_(b);
            onDense.AdapterTensors()["lora_A.weight"].copy_(onQuantized.AdapterTensors()["lora_A.weight"]);
        }
        using var x = randn(3, inF);
        using var y1 = onQuantized.forward(x);
        using var y2 = onDense.forward(x);
        Assert.True(y1.allclose(y2, rtol: 1e-4, atol: 1e-3));
    }
}
