using QuantPeft.Formats.Archive;
using QuantPeft.Optimizers;
using QuantPeft.Optimizers.GaLore;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers.Tests;

public class OptimizerStateArchiveTests
{
    private static ParamGroupOptions Options(string name) => name.StartsWith("galore", StringComparison.Ordinal) || name == "natural-galore"
        ? new ParamGroupOptions(Lr: 1e-2, WeightDecay: 0.01, GaLore: new GaLoreOptions(Rank: 8, UpdateProjGap: 2, Scale: 1.0, ProjectionType: GaLoreProjectionType.Std, Natural: name == "natural-galore" ? new NaturalGaLoreOptions() : null))
        : new ParamGroupOptions(Lr: 1e-2, WeightDecay: 0.01);

    [Theory]
    [InlineData("adamw")]
    [InlineData("adamw-8bit")]
    [InlineData("galore")]
    [InlineData("galore-8bit")]
    [InlineData("natural-galore")]
    public void SavedArchiveResumesBitForBit(string name)
    {
        // A runs 3 steps and is saved to disk; B, over a copy of A's weights, loads the archive; both then
        // take the same 3 steps and must end with identical weights.
        string path = Path.Combine(Path.GetTempPath(), $"qpeft-opt-{Guid.NewGuid():N}.qpa");
        try
        {
            var pa = TestParams.Randn(3, ScalarType.Float32, 64, 80);
            using var a = OptimizerFactory.Create(name, [TestParams.Group(Options(name), ("w", pa))]);
            for (int i = 0; i < 3; i++) { TestParams.SetGrad(pa, randn([64, 80], generator: new Generator((ulong)i))); a.Step(); }
            OptimizerStateArchive.Save(a, path);

            var pb = new TorchSharp.Modules.Parameter(pa.detach().clone(), requires_grad: true);
            using var b = OptimizerFactory.Create(name, [TestParams.Group(Options(name), ("w", pb))]);
            OptimizerStateArchive.Load(b, path);
            Assert.Equal(3, b.StepCount);
            for (int i = 3; i < 6; i++)
            {
                var g = randn([64, 80], generator: new Generator((ulong)i));
                TestParams.SetGrad(pa, g); TestParams.SetGrad(pb, g);
                a.Step(); b.Step();
            }
            Assert.True(TestParams.Same(pa, pb));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void CorruptArchiveIsRejectedNamingTheFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"qpeft-opt-{Guid.NewGuid():N}.qpa");
        try
        {
            var p = TestParams.Randn(1, ScalarType.Float32, 32, 32);
            using var opt = OptimizerFactory.Create("adamw", [TestParams.Group(new ParamGroupOptions(), ("w", p))]);
            TestParams.SetGrad(p, ones(32, 32));
            opt.Step();
            OptimizerStateArchive.Save(opt, path);
            byte[] bytes = File.ReadAllBytes(path);
            bytes[bytes.Length / 2] ^= 0x40;
            File.WriteAllBytes(path, bytes);
            var e = Assert.Throws<ArchiveFormatException>(() => OptimizerStateArchive.Load(opt, path));
            Assert.Contains(Path.GetFileName(path), e.Message);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void StateOfAnotherModelIsRejectedNamingTheTensor()
    {
        string path = Path.Combine(Path.GetTempPath(), $"qpeft-opt-{Guid.NewGuid():N}.qpa");
        try
        {
            var p = TestParams.Randn(1, ScalarType.Float32, 16, 16);
            using var a = OptimizerFactory.Create("adamw", [TestParams.Group(new ParamGroupOptions(), ("layer.a", p))]);
            TestParams.SetGrad(p, ones(16, 16));
            a.Step();
            OptimizerStateArchive.Save(a, path);
            var q = TestParams.Randn(2, ScalarType.Float32, 16, 16);
            using var b = OptimizerFactory.Create("adamw", [TestParams.Group(new ParamGroupOptions(), ("layer.b", q))]);
            var e = Assert.Throws<OptimizerConfigException>(() => OptimizerStateArchive.Load(b, path));
            Assert.Contains("layer.b", e.Message);
        }
        finally { File.Delete(path); }
    }
}
