using QuantPeft.Trainers.Model;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Tests.Model;

/// <summary>The same-segment term of the attention mask and the per-row rotary positions, against hand-worked values.</summary>
public class PackedAttentionTests
{
    [Fact]
    public void SegmentsMakeTheMaskBlockDiagonalCausal()
    {
        // Row of 5: segment 0 = positions 0–1, segment 1 = positions 2–4. Query i sees key j when j ≤ i and both share a segment.
        bool[,] expected =
        {
            { true,  false, false, false, false },
            { true,  true,  false, false, false },
            { false, false, true,  false, false },
            { false, false, true,  true,  false },
            { false, false, true,  true,  true  },
        };
        using var segments = tensor(new long[] { 0, 0, 1, 1, 1 }, [1, 5]);
        using var mask = AttentionMask.Allowed(5, 5, null, CPU, segments);
        Assert.Equal(new long[] { 1, 1, 5, 5 }, mask.shape);
        AssertMask(expected, mask.data<bool>().ToArray());
    }

    [Fact]
    public void WindowAndSegmentTermsCompose()
    {
        // Window 2 (itself and the one before) inside segments {0,1,2} and {3,4}.
        bool[,] expected =
        {
            { true,  false, false, false, false },
            { true,  true,  false, false, false },
            { false, true,  true,  false, false },
            { false, false, false, true,  false },
            { false, false, false, true,  true  },
        };
        using var segments = tensor(new long[] { 0, 0, 0, 1, 1 }, [1, 5]);
        using var mask = AttentionMask.Allowed(5, 5, 2, CPU, segments);
        AssertMask(expected, mask.data<bool>().ToArray());
    }

    [Fact]
    public void AdditiveMaskIsZeroWhereAllowedAndMinusInfinityElsewhere()
    {
        using var packed = PackedSegments.FromIds([0, 0, 1], [0, 1, 0], 1, 3, CPU);
        var m = packed.AdditiveMask(null, ScalarType.Float32).data<float>().ToArray();
        float inf = float.NegativeInfinity;
        Assert.Equal(new[] { 0f, inf, inf, 0f, 0f, inf, inf, inf, 0f }, m);
        Assert.Same(packed.AdditiveMask(null, ScalarType.Float32), packed.AdditiveMask(null, ScalarType.Float32));   // built once per window
    }

    [Fact]
    public void PerRowPositionsRotateAsTheirOwnSequence()
    {
        // Positions 0 1 0 1 2: each example's rows of cos/sin equal the table's rows 0, 1, (0, 1, 2), bit for bit.
        float[] inv = [1f, 0.1f, 0.01f, 0.001f];   // head dim 8
        var (cosTable, sinTable) = RotaryEmbedding.CosSin(inv, 5, ScalarType.Float32, CPU);
        using var positions = tensor(new long[] { 0, 1, 0, 1, 2 }, [1, 5]);
        var (cos, sin) = RotaryEmbedding.CosSin(inv, positions, ScalarType.Float32);
        Assert.Equal(new long[] { 1, 1, 5, 8 }, cos.shape);
        float[] c = cos.data<float>().ToArray(), s = sin.data<float>().ToArray();
        float[] ct = cosTable.data<float>().ToArray(), st = sinTable.data<float>().ToArray();
        int[] pos = [0, 1, 0, 1, 2];
        for (int t = 0; t < 5; t++)
            for (int d = 0; d < 8; d++)
            {
                Assert.Equal(ct[pos[t] * 8 + d], c[t * 8 + d]);
                Assert.Equal(st[pos[t] * 8 + d], s[t * 8 + d]);
            }
        // Hand value: position 2, frequency 1 → cos 2 = −0.41614684, sin 2 = 0.9092974.
        Assert.Equal(-0.41614684f, c[4 * 8], 6);
        Assert.Equal(0.9092974f, s[4 * 8 + 4], 6);
        foreach (var x in new[] { cosTable, sinTable, cos, sin }) x.Dispose();
    }

    [Fact]
    public void SegmentsNeedAsManyKeysAsQueries()
    {
        using var segments = tensor(new long[] { 0, 0, 1 }, [1, 3]);
        var e = Assert.Throws<ArgumentException>(() => AttentionMask.Allowed(3, 5, null, CPU, segments));
        Assert.Equal("segmentIds", e.ParamName);
    }

    private static void AssertMask(bool[,] expected, bool[] got)
    {
        int n = expected.GetLength(0);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                Assert.True(expected[i, j] == got[i * n + j], $"({i}, {j})");
    }
}
