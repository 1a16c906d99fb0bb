using QuantPeft.Formats.HuggingFace;

namespace QuantPeft.Trainers.Tests.Model;

/// <summary>
/// An independent, loop-by-loop formulation of the llama decoder: plain C# arithmetic over tokens,
/// heads and dimensions, written from the equations (RMSNorm, rotate-half RoPE, causal grouped-query
/// attention, SwiGLU) and sharing no code with the TorchSharp model.
/// </summary>
internal sealed class ReferenceDecoder
{
    private readonly ModelSpec _spec;
    private readonly Func<string, float[]> _w;

    public ReferenceDecoder(ModelSpec spec, Func<string, float[]> weights)
    {
        _spec = spec;
        _w = weights;
    }

    /// <summary>Logits [t][v] for one sequence.</summary>
    public double[][] Logits(long[] ids)
    {
        int h = _spec.HiddenSize;
        var x = ids.Select(id => Enumerable.Range(0, h).Select(i => (double)_w("model.embed_tokens.weight")[id * h + i]).ToArray()).ToArray();
        for (int l = 0; l < _spec.NumLayers; l++)
        {
            string p = $"model.layers.{l}.";
            var attn = Attention(Norm(x, _w(p + "input_layernorm.weight")), p + "self_attn.");
            x = Add(x, attn);
            var mlp = Norm(x, _w(p + "post_attention_layernorm.weight")).Select(row => Mlp(row, p + "mlp.")).ToArray();
            x = Add(x, mlp);
        }
        var final = Norm(x, _w("model.norm.weight"));
        var head = _spec.TieWordEmbeddings ? _w("model.embed_tokens.weight") : _w("lm_head.weight");
        return final.Select(row => Linear(row, head, _spec.VocabSize, null)).ToArray();
    }

    private double[] Mlp(double[] x, string p)
    {
        int inter = _spec.IntermediateSize;
        var gate = Linear(x, _w(p + "gate_proj.weight"), inter, null);
        var up = Linear(x, _w(p + "up_proj.weight"), inter, null);
        var act = new double[inter];
        for (int j = 0; j < inter; j++)
            act[j] = gate[j] / (1 + Math.Exp(-gate[j])) * up[j];
        return Linear(act, _w(p + "down_proj.weight"), _spec.HiddenSize, null);
    }

    private double[][] Attention(double[][] x, string p)
    {
        int t = x.Length, nH = _spec.NumHeads, nKv = _spec.NumKvHeads, d = _spec.HeadDim;
        float[]? Bias(string n) => _spec.AttentionBias ? _w(p + n) : null;
        var q = x.Select(r => Linear(r, _w(p + "q_proj.weight"), nH * d, Bias("q_proj.bias"))).ToArray();
        var k = x.Select(r => Linear(r, _w(p + "k_proj.weight"), nKv * d, Bias("k_proj.bias"))).ToArray();
        var v = x.Select(r => Linear(r, _w(p + "v_proj.weight"), nKv * d, Bias("v_proj.bias"))).ToArray();
        for (int pos = 0; pos < t; pos++)
        {
            for (int head = 0; head < nH; head++) Rotate(q[pos], head * d, pos);
            for (int head = 0; head < nKv; head++) Rotate(k[pos], head * d, pos);
        }
        int group = nH / nKv;
        var merged = new double[t][];
        for (int i = 0; i < t; i++)
        {
            merged[i] = new double[nH * d];
            for (int head = 0; head < nH; head++)
            {
                int kvHead = head / group;
                var scores = new double[i + 1];
                for (int j = 0; j <= i; j++)
                {
                    double s = 0;
                    for (int e = 0; e < d; e++) s += q[i][head * d + e] * k[j][kvHead * d + e];
                    scores[j] = s / Math.Sqrt(d);
                }
                double max = scores.Max(), sum = 0;
                for (int j = 0; j <= i; j++) { scores[j] = Math.Exp(scores[j] - max); sum += scores[j]; }
                for (int j = 0; j <= i; j++)
                    for (int e = 0; e < d; e++)
                        merged[i][head * d + e] += scores[j] / sum * v[j][kvHead * d + e];
            }
        }
        return merged.Select(r => Linear(r, _w(p + "o_proj.weight"), _spec.HiddenSize, null)).ToArray();
    }

    /// <summary>Rotates pairs (i, i + D/2) of one head by position·θ^(−2i/D).</summary>
    private void Rotate(double[] vec, int offset, int pos)
    {
        int d = _spec.HeadDim, half = d / 2;
        for (int i = 0; i < half; i++)
        {
            double angle = pos * Math.Pow(_spec.RopeTheta, -2.0 * i / d);
            double a = vec[offset + i], b = vec[offset + i + half];
            vec[offset + i] = a * Math.Cos(angle) - b * Math.Sin(angle);
            vec[offset + i + half] = b * Math.Cos(angle) + a * Math.Sin(angle);
        }
    }

    private double[][] Norm(double[][] x, float[] weight) => x.Select(row =>
    {
        double ms = row.Sum(v => v * v) / row.Length;
        double inv = 1 / Math.Sqrt(ms + _spec.RmsNormEps);
        return row.Select((v, i) => weight[i] * v * inv).ToArray();
    }).ToArray();

    private static double[] Linear(double[] x, float[] weight, int outFeatures, float[]? bias)
    {
        int inFeatures = x.Length;
        var y = new double[outFeatures];
        for (int o = 0; o < outFeatures; o++)
        {
            double s = bias?[o] ?? 0;
            for (int i = 0; i < inFeatures; i++) s += weight[o * inFeatures + i] * x[i];
            y[o] = s;
        }
        return y;
    }

    private static double[][] Add(double[][] a, double[][] b) =>
        a.Select((row, t) => row.Select((v, i) => v + b[t][i]).ToArray()).ToArray();
}
