using QuantPeft.Formats;
using QuantPeft.Trainers.Data;

namespace QuantPeft.Trainers.Tests.Data;

public class JsonlDatasetReaderTests
{
    [Fact]
    public void ReadsEachFormatWithLineNumbersSkippingBlankLines()
    {
        using var dir = new TempDir();
        string path = dir.Write("d.jsonl",
            "\uFEFF{\"text\": \"plain\", \"extra\": 1}\r\n" +
            "\n" +
            "{\"prompt\": \"2+2=\", \"completion\": \"4\"}\n" +
            "{\"messages\": [{\"role\": \"system\", \"content\": \"be brief\"}, {\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}");
        var records = JsonlDatasetReader.Read(path);
        Assert.Equal(3, records.Count);
        Assert.Equal(new DatasetRecord { Kind = RecordKind.Text, Text = "plain", Line = 1 }, records[0]);
        Assert.Equal((RecordKind.PromptCompletion, "2+2=", "4", 3), (records[1].Kind, records[1].Prompt, records[1].Completion, records[1].Line));
        Assert.Equal(RecordKind.Messages, records[2].Kind);
        Assert.Equal(4, records[2].Line);
        Assert.Equal([new ChatMessage("system", "be brief"), new ChatMessage("user", "hi"), new ChatMessage("assistant", "yo")], records[2].Messages!);
    }

    [Theory]
    [InlineData("{\"text\": \"ok\"", "invalid JSON")]
    [InlineData("not json", "invalid JSON")]
    [InlineData("[1, 2]", "expected a JSON object, found an array")]
    [InlineData("{\"foo\": \"bar\"}", "missing field: expected 'text'")]
    [InlineData("{\"prompt\": \"p\"}", "missing field 'completion'")]
    [InlineData("{\"completion\": \"c\"}", "missing field 'prompt'")]
    [InlineData("{\"text\": 3}", "field 'text': expected a string, found the number 3")]
    [InlineData("{\"text\": \"\"}", "field 'text' is empty")]
    [InlineData("{\"prompt\": true, \"completion\": \"c\"}", "field 'prompt': expected a string, found the boolean true")]
    [InlineData("{\"prompt\": \"p\", \"completion\": null}", "field 'completion': expected a string, found null")]
    [InlineData("{\"prompt\": \"p\", \"completion\": \"\"}", "field 'completion' is empty")]
    [InlineData("{\"text\": \"t\", \"prompt\": \"p\", \"completion\": \"c\"}", "more than one format")]
    [InlineData("{\"messages\": {}}", "field 'messages': expected an array, found an object")]
    [InlineData("{\"messages\": []}", "field 'messages' is empty")]
    [InlineData("{\"messages\": [\"hi\"]}", "field 'messages[0]': expected an object")]
    [InlineData("{\"messages\": [{\"content\": \"x\"}]}", "missing field 'messages[0].role'")]
    [InlineData("{\"messages\": [{\"role\": 1, \"content\": \"x\"}]}", "field 'messages[0].role': expected a string, found the number 1")]
    [InlineData("{\"messages\": [{\"role\": \"bot\", \"content\": \"x\"}]}", "found \"bot\"")]
    [InlineData("{\"messages\": [{\"role\": \"user\"}]}", "missing field 'messages[0].content'")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": [1]}]}", "field 'messages[0].content': expected a string, found an array")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}", "no assistant turn")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"assistant\", \"content\": \"\"}]}", "'messages[1].content' is empty")]
    public void BadLineIsReportedWithFileLineAndProblem(string badLine, string expected)
    {
        using var dir = new TempDir();
        string path = dir.Write("bad.jsonl", "{\"text\": \"good\"}\n" + badLine + "\n{\"text\": \"good\"}\n");
        var e = Assert.Throws<DatasetFormatException>(() => JsonlDatasetReader.Read(path));
        Assert.IsAssignableFrom<QuantPeftException>(e);
        Assert.Equal(path, e.FilePath);
        Assert.Equal(1, e.BadLineCount);
        Assert.Equal(2, Assert.Single(e.Errors).Line);
        Assert.Contains(expected, e.Errors[0].Problem);
        Assert.Contains(path, e.Message);
        Assert.Contains("line 2: ", e.Message);
    }

    [Fact]
    public void SeveralBadLinesReportTheFirstFiveAndTheTotal()
    {
        using var dir = new TempDir();
        var lines = new List<string> { "{\"text\": \"ok\"}" };
        for (int i = 0; i < 8; i++) lines.Add("{\"prompt\": \"p\", \"completion\": \"\"}");
        string path = dir.Write("bad.jsonl", string.Join("\n", lines));
        var e = Assert.Throws<DatasetFormatException>(() => JsonlDatasetReader.Read(path));
        Assert.Equal(8, e.BadLineCount);
        Assert.Equal([2, 3, 4, 5, 6], e.Errors.Select(x => x.Line));
        Assert.Contains("8 bad line(s)", e.Message);
        Assert.Contains("and 3 more", e.Message);
    }

    [Fact]
    public void InvalidUtf8IsABadLine()
    {
        using var dir = new TempDir();
        string path = dir.File("bad.jsonl");
        File.WriteAllBytes(path, [.. "{\"text\": \"ok\"}\n{\"text\": \""u8, 0xFF, .. "\"}\n"u8]);
        var e = Assert.Throws<DatasetFormatException>(() => JsonlDatasetReader.Read(path));
        Assert.Equal(2, Assert.Single(e.Errors).Line);
        Assert.Equal("not valid UTF-8 at byte 11", e.Errors[0].Problem);
    }

    [Fact]
    public void MissingAndEmptyFilesNameTheFile()
    {
        using var dir = new TempDir();
        string missing = dir.File("nope.jsonl");
        Assert.Contains(missing, Assert.Throws<DatasetFormatException>(() => JsonlDatasetReader.Read(missing)).Message);
        string empty = dir.Write("empty.jsonl", "\n  \n");
        var e = Assert.Throws<DatasetFormatException>(() => JsonlDatasetReader.Read(empty));
        Assert.Contains(empty, e.Message);
        Assert.Contains("no records", e.Message);
    }

    [Fact]
    public void WriterRoundTripsEveryFormat()
    {
        using var dir = new TempDir();
        DatasetRecord[] records =
        [
            DatasetRecord.FromText("line with \"quotes\", <html> & emoji 😀\nand a newline"),
            DatasetRecord.FromPromptCompletion("upper: abc => ", "ABC"),
            DatasetRecord.FromMessages([new ChatMessage("user", "hi"), new ChatMessage("assistant", "yo")]),
        ];
        string path = dir.File("out/d.jsonl");
        Assert.Equal(3, JsonlDatasetWriter.Write(path, records));
        var back = JsonlDatasetReader.Read(path);
        Assert.Equal(3, File.ReadAllLines(path).Length);
        Assert.Equal(records[0].Text, back[0].Text);
        Assert.Equal((records[1].Prompt, records[1].Completion), (back[1].Prompt, back[1].Completion));
        Assert.Equal(records[2].Messages!, back[2].Messages!);
        Assert.False(File.Exists(path + ".qpeft-tmp"));
    }
}
