using System.Text;
using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Tests.Tokenizers;

/// <summary>
/// A SentencePiece BPE model written by hand in protobuf wire format (sentencepiece_model.proto:
/// ModelProto.pieces = 1, trainer_spec = 2, normalizer_spec = 3). BPE merges the adjacent pair whose
/// joined piece has the highest score.
/// </summary>
public class SentencePieceTests
{
    // id: piece (score). Merged pieces score higher the earlier they should apply.
    private static readonly (string Piece, float Score, int Type)[] Pieces =
    [
        ("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3),
        ("▁", -10, 1), ("h", -11, 1), ("e", -12, 1), ("l", -13, 1), ("o", -14, 1),
        ("he", -1, 1), ("ll", -2, 1), ("hell", -3, 1), ("▁hell", -4, 1),
    ];

    internal static byte[] BuildModel()
    {
        var model = new MemoryStream();
        foreach (var (piece, score, type) in Pieces)
        {
            var p = new MemoryStream();
            Proto.String(p, 1, piece);
            Proto.Float(p, 2, score);
            Proto.Varint(p, 3, (ulong)type);
            Proto.Bytes(model, 1, p.ToArray());
        }
        var trainer = new MemoryStream();
        Proto.Varint(trainer, 3, 2);   // model_type = BPE
        Proto.Varint(trainer, 4, (ulong)Pieces.Length);
        Proto.Varint(trainer, 40, 0);  // unk_id
        Proto.Varint(trainer, 41, 1);  // bos_id
        Proto.Varint(trainer, 42, 2);  // eos_id
        Proto.Varint(trainer, 43, ulong.MaxValue); // pad_id = -1 (int32 -1 is a 10-byte varint)
        Proto.Bytes(model, 2, trainer.ToArray());
        var normalizer = new MemoryStream();
        Proto.String(normalizer, 1, "identity");
        Proto.Varint(normalizer, 3, 1); // add_dummy_prefix
        Proto.Varint(normalizer, 4, 1); // remove_extra_whitespaces
        Proto.Varint(normalizer, 5, 1); // escape_whitespaces
        Proto.Bytes(model, 3, normalizer.ToArray());
        return model.ToArray();
    }

    [Fact]
    public void EncodesToHandDerivedIds()
    {
        using var dir = new TempDir();
        string path = dir.File("tokenizer.model");
        File.WriteAllBytes(path, BuildModel());
        var tok = SentencePieceTextTokenizer.Load(path);
        // "hello" -> "▁hello": ▁ h e l l o -> ▁ he l l o -> ▁ he ll o -> ▁ hell o -> ▁hell o = [11, 7].
        Assert.Equal([11, 7], tok.Encode("hello"));
        Assert.Equal([11, 7, 11, 7], tok.Encode("hello hello"));
        Assert.Equal("hello hello", tok.Decode([1, 11, 7, 11, 7, 2]));
        Assert.Equal(1, tok.BosId);
        Assert.Equal(2, tok.EosId);
        Assert.Null(tok.PadId);
        Assert.Equal(12, tok.VocabSize);
        Assert.IsType<SentencePieceTextTokenizer>(TokenizerLoader.FromModelFolder(dir.Path));
    }

    [Fact]
    public void GarbageModelNamesTheFile()
    {
        using var dir = new TempDir();
        string path = dir.File("tokenizer.model");
        File.WriteAllBytes(path, Encoding.ASCII.GetBytes("this is not a protobuf \xff\xff\xff"));
        var e = Assert.Throws<TokenizerLoadException>(() => SentencePieceTextTokenizer.Load(path));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void MissingModelNamesTheFile()
    {
        using var dir = new TempDir();
        string path = dir.File("tokenizer.model");
        var e = Assert.Throws<TokenizerLoadException>(() => SentencePieceTextTokenizer.Load(path));
        Assert.Contains(path, e.Message);
    }

    internal static class Proto
    {
        public static void Varint(Stream s, int field, ulong value)
        {
            Raw(s, (ulong)(field << 3));
            Raw(s, value);
        }

        public static void Float(Stream s, int field, float value)
        {
            Raw(s, (ulong)(field << 3 | 5));
            s.Write(BitConverter.GetBytes(value));
        }

        public static void String(Stream s, int field, string value) => Bytes(s, field, Encoding.UTF8.GetBytes(value));

        public static void Bytes(Stream s, int field, byte[] value)
        {
            Raw(s, (ulong)(field << 3 | 2));
            Raw(s, (ulong)value.Length);
            s.Write(value);
        }

        private static void Raw(Stream s, ulong v)
        {
            while (v >= 0x80) { s.WriteByte((byte)(v | 0x80)); v >>= 7; }
            s.WriteByte((byte)v);
        }
    }
}
