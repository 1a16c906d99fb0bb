using System.Buffers.Binary;
using System.Text;

namespace QuantPeft.Trainers.Tokenizers;

/// <summary>One piece of a SentencePiece model: its text, score and type (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte).</summary>
/// <param name="Piece">The piece text, with U+2581 for a space.</param>
/// <param name="Score">The score (log-probability for unigram, merge priority for BPE).</param>
/// <param name="Type">The piece type, as sentencepiece_model.proto numbers it.</param>
public sealed record SentencePiece(string Piece, float Score, int Type);

/// <summary>
/// The pieces and special ids of a SentencePiece <c>tokenizer.model</c>, read straight from its protobuf
/// (sentencepiece_model.proto: <c>ModelProto.pieces</c> = 1 with piece = 1, score = 2, type = 3;
/// <c>trainer_spec</c> = 2 with unk_id = 40, bos_id = 41, eos_id = 42, pad_id = 43), for writers that need the whole
/// vocabulary (GGUF), which the tokenizer library does not expose with scores and types.
/// </summary>
/// <param name="Pieces">The pieces, by id.</param>
/// <param name="UnknownId">unk_id (default 0).</param>
/// <param name="BosId">bos_id (default 1), or −1 for none.</param>
/// <param name="EosId">eos_id (default 2), or −1 for none.</param>
/// <param name="PadId">pad_id (default −1: none).</param>
public sealed record SentencePieceModelFile(IReadOnlyList<SentencePiece> Pieces, int UnknownId, int BosId, int EosId, int PadId)
{
    /// <summary>Reads <paramref name="path"/>.</summary>
    /// <exception cref="TokenizerLoadException">The file is missing or not a SentencePiece protobuf.</exception>
    public static SentencePieceModelFile Read(string path)
    {
        byte[] bytes = TokenizerJsonFile.ReadAllBytes(path);
        var pieces = new List<SentencePiece>();
        int unk = 0, bos = 1, eos = 2, pad = -1;
        try
        {
            var reader = new ProtoReader(bytes);
            while (reader.Next(out int field, out int wire))
            {
                if (field == 1 && wire == 2) pieces.Add(ReadPiece(new ProtoReader(reader.Bytes())));
                else if (field == 2 && wire == 2)
                {
                    var trainer = new ProtoReader(reader.Bytes());
                    while (trainer.Next(out int f, out int w))
                    {
                        if (w != 0) { trainer.Skip(w); continue; }
                        int value = (int)trainer.Varint();
                        switch (f)
                        {
                            case 40: unk = value; break;
                            case 41: bos = value; break;
                            case 42: eos = value; break;
                            case 43: pad = value; break;
                        }
                    }
                }
                else reader.Skip(wire);
            }
        }
        catch (Exception e) when (e is IndexOutOfRangeException or ArgumentOutOfRangeException or InvalidDataException or DecoderFallbackException)
        {
            throw new TokenizerLoadException(path, $"not a valid SentencePiece model: {e.Message}", e);
        }
        if (pieces.Count == 0) throw new TokenizerLoadException(path, "not a valid SentencePiece model: no pieces");
        return new SentencePieceModelFile(pieces, unk, bos, eos, pad);
    }

    private static SentencePiece ReadPiece(ProtoReader r)
    {
        string piece = "";
        float score = 0;
        int type = 1;
        while (r.Next(out int field, out int wire))
        {
            if (field == 1 && wire == 2) piece = new UTF8Encoding(false, true).GetString(r.Bytes());
            else if (field == 2 && wire == 5) score = r.Fixed32();
            else if (field == 3 && wire == 0) type = (int)r.Varint();
            else r.Skip(wire);
        }
        return new SentencePiece(piece, score, type);
    }

    private ref struct ProtoReader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _at;

        public bool Next(out int field, out int wire)
        {
            field = wire = 0;
            if (_at >= _data.Length) return false;
            ulong key = Varint();
            (field, wire) = ((int)(key >> 3), (int)(key & 7));
            return true;
        }

        public ulong Varint()
        {
            ulong value = 0;
            for (int shift = 0; ; shift += 7)
            {
                if (shift > 63) throw new InvalidDataException("varint longer than 10 bytes");
                byte b = _data[_at++];
                value |= (ulong)(b & 0x7f) << shift;
                if (b < 0x80) return value;
            }
        }

        public ReadOnlySpan<byte> Bytes()
        {
            int length = checked((int)Varint());
            var slice = _data.Slice(_at, length);
            _at += length;
            return slice;
        }

        public float Fixed32()
        {
            float v = BinaryPrimitives.ReadSingleLittleEndian(_data.Slice(_at, 4));
            _at += 4;
            return v;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: _at += 8; break;
                case 2: Bytes(); break;
                case 5: _at += 4; break;
                default: throw new InvalidDataException($"unsupported protobuf wire type {wire}");
            }
        }
    }
}
