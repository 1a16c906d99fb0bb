using QuantPeft.Optimizers.GaLore;
using QuantPeft.Optimizers.State;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers.Tests.GaLore;

public class GaLoreProjectorTests
{
    [Theory]
    [InlineData(GaLoreProjectionType.Std, 12, 8, false, true, 12, 3)]        // m ≥ n → right, R m×r
    [InlineData(GaLoreProjectionType.Std, 8, 12, true, false, 3, 12)]        // m < n → left, R r×n
    [InlineData(GaLoreProjectionType.ReverseStd, 12, 8, true, false, 3, 8)]
    [InlineData(GaLoreProjectionType.ReverseStd, 8, 12, false, true, 8, 3)]
    [InlineData(GaLoreProjectionType.Left, 12, 8, true, false, 3, 8)]
    [InlineData(GaLoreProjectionType.Right, 8, 12, false, true, 8, 3)]
    [InlineData(GaLoreProjectionType.Full, 12, 8, true, true, 3, 3)]
    public void SideRules_Shapes_AndOrthonormalFactors(GaLoreProjectionType type, long m, long n, bool left, bool right, long rRows, long rCols)
    {
        using var alloc = new DeviceStateAllocator();
        var proj = new GaLoreProjector(type, 3, m, n, ScalarType.Float32, CPU, alloc);
        var g = randn([m, n], generator: new Generator(5));
        proj.Refresh(g);
        Assert.Equal(left, proj.Left is not null);
        Assert.Equal(right, proj.Right is not null);
        Assert.Equal([rRows, rCols], proj.ProjectedShape);
        using var r = proj.Project(g);
        Assert.Equal([rRows, rCols], r.shape);
        var eye3 = eye(3);
        if (proj.Left is { } p) Assert.True(p.t().matmul(p).allclose(eye3, rtol: 0, atol: 1e-5), "PᵀP ≠ I");
        if (proj.Right is { } q) Assert.True(q.matmul(q.t()).allclose(eye3, rtol: 0, atol: 1e-5), "QQᵀ ≠ I");
    }

    [Fact]
    public void Projection_KeepsTheTopSingularDirections()
    {
        // G = diag(3, 2, 1) stacked on a zero row: the rank-2 right projection keeps the 3 and 2 parts.
        var g = tensor(new float[] { 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0 }).reshape(4, 3);
        using var alloc = new DeviceStateAllocator();
        var proj = new GaLoreProjector(GaLoreProjectionType.Std, 2, 4, 3, ScalarType.Float32, CPU, alloc);
        proj.Refresh(g);
        using var back = proj.ProjectBack(proj.Project(g));
        var expected = tensor(new float[] { 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0 }).reshape(4, 3);
        Assert.True(back.allclose(expected, rtol: 0, atol: 1e-5));
    }
}
