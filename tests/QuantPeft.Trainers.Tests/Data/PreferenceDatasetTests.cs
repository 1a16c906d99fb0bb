using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Tests.Data;

public class PreferenceDatasetTests
{
    private static readonly ByteLevelTokenizer Bytes = new();

    [Fact]
    public void ReadsBothFormsAndTheThreeWaysToWriteAnAssistantTurn()
    {
        using var dir = new TempDir();
        string path = dir.Write("p.jsonl", string.Join('\n',
            """{"prompt": "2+2=", "chosen": "4", "rejected": "5"}""",
            "",
            """{"messages": [{"role": "user", "content": "hi"}], "chosen": {"role": "assistant", "content": "hello"}, "rejected": [{"role": "assistant", "content": "go away"}]}"""));
        var records = PreferenceDatasetReader.Read(path);
        Assert.Equal(2, records.Count);
        Assert.Equal(("2+2=", "4", "5", 1), (records[0].Prompt, records[0].Chosen, records[0].Rejected, records[0].Line));
        Assert.Equal(("hello", "go away", 3), (records[1].Chosen, records[1].Rejected, records[1].Line));
        Assert.Equal("user", records[1].Messages![0].Role);
    }

    [Fact]
    public void BadRecordsAreReportedWithFileAndLine()
    {
        using var dir = new TempDir();
        string path = dir.Write("bad.jsonl", string.Join('\n',
            """{"prompt": "a", "chosen": "b", "rejected": "c"}""",
            """{"prompt": "a", "rejected": "c"}""",
            """{"prompt": "a", "chosen": "same", "rejected": "same"}""",
            """{"prompt": "a", "chosen": "b"}"""));
        var e = Assert.Throws<DatasetFormatException>(() => PreferenceDatasetReader.Read(path));
        Assert.Equal(3, e.BadLineCount);
        Assert.Contains(path, e.Message);
        Assert.Equal([2, 3, 4], e.Errors.Select(x => x.Line));
        Assert.Contains("missing field 'chosen'", e.Errors[0].Problem);
        Assert.Contains("same text", e.Errors[1].Problem);
        Assert.Contains("missing field 'rejected'", e.Errors[2].Problem);
    }

    [Fact]
    public void OnlyTheAnswerAndItsEosAreScored()
    {
        // Byte-level: the prompt is BOS + 4 bytes, the answers 1 and 3 bytes, each closed by EOS.
        var record = PreferenceRecord.FromPrompt("2+2=", "4", "fiv") with { Line = 9 };
        var (chosen, rejected) = new PreferenceEncoder(Bytes, ChatTemplate.Default, 16).Encode(record, "p.jsonl");
        Assert.Equal(["4"u8[0], Bytes.EosId!.Value], chosen.Labels.Where(l => l != TrainingRow.IgnoreIndex));
        Assert.Equal([(int)'f', 'i', 'v', Bytes.EosId!.Value], rejected.Labels.Where(l => l != TrainingRow.IgnoreIndex));
        // Labels are pre-shifted: position 4 (the last prompt byte '=') predicts the first answer byte.
        Assert.Equal('4', chosen.Labels[4]);
        Assert.All(chosen.Labels.Take(4), l => Assert.Equal(TrainingRow.IgnoreIndex, l));
    }

    [Fact]
    public void AConversationScoresOnlyTheNewAssistantTurn()
    {
        var template = ChatTemplate.Of(ChatTemplateKind.ChatMl);
        var record = new PreferenceRecord
        {
            Messages = [new("user", "a"), new("assistant", "earlier"), new("user", "b")],
            Chosen = "yes", Rejected = "no", Line = 1,
        };
        var (chosen, _) = new PreferenceEncoder(Bytes, template, 200).Encode(record, "c.jsonl");
        string scored = new([.. chosen.Labels.Where(l => l != TrainingRow.IgnoreIndex && l < 256).Select(l => (char)l)]);
        Assert.Equal("yes<|im_end|>", scored);
    }

    [Fact]
    public void APromptThatFillsTheRowIsRefusedNamingTheLine()
    {
        var record = PreferenceRecord.FromPrompt(new string('x', 20), "a", "b") with { Line = 7 };
        var e = Assert.Throws<DatasetFormatException>(() => new PreferenceEncoder(Bytes, ChatTemplate.Default, 16).Encode(record, "long.jsonl"));
        Assert.Contains("long.jsonl", e.Message);
        Assert.Contains("line 7", e.Message);
        Assert.Contains("--seq 16", e.Message);
    }
}
