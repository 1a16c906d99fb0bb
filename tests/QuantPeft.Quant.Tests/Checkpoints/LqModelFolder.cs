using System.Runtime.InteropServices;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Safetensors;

namespace QuantPeft.Quant.Tests.Checkpoints;

/// <summary>
/// A one-layer Llama-shaped model folder (f32) whose projections are a rank-6 component plus dense noise, the
/// structure LQ-LoRA targets; every projection holds a multiple of 16384 weights so all candidates apply.
/// Written with the project's safetensors writer; deleted on dispose.
/// </summary>
internal sealed class LqModelFolder : IDisposable
{
    public static readonly ModelSpec Spec = new()
    {
        ModelType = "llama", NumLayers = 1, HiddenSize = 128, IntermediateSize = 256, NumHeads = 4, NumKvHeads = 4, VocabSize = 32,
    };

    public LqModelFolder(bool writeConfig = true)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "qpeft-lq-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
        var rng = new Random(77);
        double Gauss() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        var entries = new List<SafetensorsTensorEntry>();
        foreach (TensorSpec t in Spec.Tensors())
        {
            var v = new float[t.ElementCount];
            if (t.Shape.Length == 2 && t.Name.Contains("_proj", StringComparison.Ordinal))
            {
                int m = (int)t.Shape[0], n = (int)t.Shape[1], r = 6;
                var a = new double[m * r];
                var b = new double[r * n];
                for (int i = 0; i < a.Length; i++) a[i] = Gauss();
                for (int i = 0; i < b.Length; i++) b[i] = Gauss();
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++)
                    {
                        double s = 0;
                        for (int k = 0; k < r; k++) s += a[i * r + k] * b[k * n + j];
                        v[i * n + j] = (float)(0.01 * s + 0.01 * Gauss());
                    }
            }
            else
            {
                for (int i = 0; i < v.Length; i++) v[i] = (float)(0.02 * Gauss());
            }
            Original[t.Name] = v;
            entries.Add(SafetensorsTensorEntry.FromBytes(t.Name, SafetensorsDType.F32, t.Shape, MemoryMarshal.AsBytes(v.AsSpan()).ToArray()));
        }
        SafetensorsWriter.WriteFile(System.IO.Path.Combine(Path, "model.safetensors"), entries);
        if (writeConfig) ModelConfigWriter.WriteToFolder(Spec, Path);
    }

    public string Path { get; }

    public Dictionary<string, float[]> Original { get; } = [];

    public string Sibling(string name) => System.IO.Path.Combine(System.IO.Path.GetDirectoryName(Path)!, System.IO.Path.GetFileName(Path) + "-" + name);

    public void Dispose()
    {
        foreach (string dir in Directory.GetDirectories(System.IO.Path.GetDirectoryName(Path)!, System.IO.Path.GetFileName(Path) + "*"))
            Directory.Delete(dir, recursive: true);
    }
}
