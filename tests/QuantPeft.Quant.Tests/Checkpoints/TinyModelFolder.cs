using System.Runtime.InteropServices;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Tests.Checkpoints;

/// <summary>A small Llama-shaped model folder with seeded N(0, 0.02²)-ish bf16 weights, deleted on dispose.</summary>
internal sealed class TinyModelFolder : IDisposable
{
    public static readonly ModelSpec Spec = new()
    {
        ModelType = "llama", NumLayers = 2, HiddenSize = 64, IntermediateSize = 96, NumHeads = 4, NumKvHeads = 2, VocabSize = 50,
    };

    public TinyModelFolder(Func<TensorSpec, long[]>? shapeOverride = null, string? poisonTensor = null)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "qpeft-q-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
        var rng = new Random(1234);
        var entries = new List<SafetensorsTensorEntry>();
        foreach (TensorSpec t in Spec.Tensors())
        {
            long[] shape = shapeOverride?.Invoke(t) ?? t.Shape;
            long n = shape.Aggregate(1L, (a, b) => a * b);
            var bits = new ushort[n];
            for (long i = 0; i < n; i++)
            {
                double g = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
                bits[i] = FloatBits.SingleToBFloat16((float)(0.02 * g));
            }
            if (t.Name == poisonTensor) bits[n / 2] = FloatBits.SingleToBFloat16(float.NaN);
            Original[t.Name] = bits;
            entries.Add(SafetensorsTensorEntry.FromBytes(t.Name, SafetensorsDType.BF16, shape, MemoryMarshal.AsBytes(bits.AsSpan()).ToArray()));
        }
        SafetensorsWriter.WriteFile(System.IO.Path.Combine(Path, "model.safetensors"), entries);
        ModelConfigWriter.WriteToFolder(Spec, Path, "bfloat16");
        File.WriteAllText(System.IO.Path.Combine(Path, "tokenizer.json"), "{\"model\":{}}");
    }

    public string Path { get; }

    public Dictionary<string, ushort[]> Original { get; } = [];

    public string Sibling(string name) => System.IO.Path.Combine(System.IO.Path.GetDirectoryName(Path)!, System.IO.Path.GetFileName(Path) + "-" + name);

    public void Dispose()
    {
        foreach (string dir in Directory.GetDirectories(System.IO.Path.GetDirectoryName(Path)!, System.IO.Path.GetFileName(Path) + "*"))
            Directory.Delete(dir, recursive: true);
    }
}
