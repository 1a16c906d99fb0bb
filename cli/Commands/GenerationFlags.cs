using System.CommandLine;
using System.Text.Json;
using QuantPeft.Formats;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Export;
using QuantPeft.Trainers.Generation;
using QuantPeft.Trainers.Recipes;
using QuantPeft.Trainers.Tokenizers;
using static TorchSharp.torch;

namespace QuantPeft.Cli.Commands;

/// <summary>The flags <c>qpeft generate</c> and <c>qpeft chat</c> share: the model, its adapter and base format, and sampling.</summary>
internal sealed class GenerationFlags
{
    public Argument<string> Model { get; } = new("model") { Description = "Model folder (config.json, safetensors, tokenizer) or synthetic:NAME" };
    public Option<string?> Adapter { get; } = new("--adapter") { Description = "A PEFT adapter folder or a run folder (its adapter/)" };
    public Option<string> Weights { get; } = new("--weights") { Description = "Base format: bf16 (dense), nf4 or fp4 (4-bit, as QLoRA training), or lq-lora:BITS (an LQ-LoRA run's base, rebuilt as training built it)", DefaultValueFactory = _ => "bf16" };
    public Option<bool> DoubleQuant { get; } = new("--double-quant") { Description = "Double-quantized 4-bit block scales (as training's --double-quant)" };
    public Option<int> MaxNewTokens { get; } = new("--max-new-tokens") { Description = "Most tokens generated per answer", DefaultValueFactory = _ => 256 };
    public Option<double> Temperature { get; } = new("--temperature") { Description = "0: greedy and deterministic; otherwise sample at this temperature", DefaultValueFactory = _ => 0 };
    public Option<double> TopP { get; } = new("--top-p") { Description = "Nucleus sampling: keep the most likely tokens up to this probability", DefaultValueFactory = _ => 1 };
    public Option<int> TopK { get; } = new("--top-k") { Description = "Keep the K most likely tokens (0: all)", DefaultValueFactory = _ => 0 };
    public Option<double> RepetitionPenalty { get; } = new("--repetition-penalty") { Description = "Penalise tokens already in the context (1: off)", DefaultValueFactory = _ => 1 };
    public Option<int> Seed { get; } = new("--seed") { Description = "Seed of the sampler", DefaultValueFactory = _ => 0 };
    public Option<string> Device { get; } = DeviceOption.Create();

    public void AddTo(Command command)
    {
        command.Add(Model);
        foreach (Option o in new Option[] { Adapter, Weights, DoubleQuant, MaxNewTokens, Temperature, TopP, TopK, RepetitionPenalty, Seed, Device })
            command.Add(o);
    }

    public SamplingOptions Sampling(ParseResult parse)
    {
        var s = new SamplingOptions(parse.GetValue(Temperature), parse.GetValue(TopK), parse.GetValue(TopP), parse.GetValue(RepetitionPenalty), parse.GetValue(Seed));
        try
        {
            s.Validate();
        }
        catch (ArgumentException e)
        {
            throw new QuantPeftException(e.Message);
        }
        if (parse.GetValue(MaxNewTokens) < 1) throw new QuantPeftException($"--max-new-tokens: expected an integer ≥ 1, found {parse.GetValue(MaxNewTokens)}");
        return s;
    }

    public GenerationModel Load(ParseResult parse)
    {
        string? adapter = parse.GetValue(Adapter);
        WeightFormat weights = WeightFormat.Bf16;
        double? lqLoraBits = null;
        string weightsText = parse.GetValue(Weights)!;
        try
        {
            if (weightsText.Trim().StartsWith("lq-lora:", StringComparison.OrdinalIgnoreCase))
                lqLoraBits = QuantPeft.Memory.Planning.Knob.ParseWeights(weightsText).Bits;
            else
                weights = BaseWeights.Parse(weightsText);
        }
        catch (AdapterException e)
        {
            throw new QuantPeftException(e.Message);
        }
        catch (QuantPeft.Memory.Planning.PlanningException e)
        {
            throw new QuantPeftException(e.Message);
        }
        try
        {
            return GenerationModel.Load(parse.GetValue(Model)!, adapter is null ? null : PeftAdapterCopy.ResolveAdapter(adapter), weights,
                ScalarType.Float32, parse.GetValue(DoubleQuant), RunDevice.Resolve(parse.GetValue(Device)!), lqLoraBits);
        }
        catch (QuantPeft.Trainers.Model.ModelException e)
        {
            throw new QuantPeftException($"MODEL: {e.Message}");
        }
    }

    /// <summary>Reads a conversation: a JSON array of {role, content}, or an object with such a <c>messages</c> array.</summary>
    public static IReadOnlyList<ChatMessage> ReadMessages(string path)
    {
        if (!File.Exists(path)) throw new QuantPeftException($"--messages: file '{path}' does not exist");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new QuantPeftException($"--messages: '{path}': invalid JSON at line {e.LineNumber + 1}: {e.Message}");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("messages", out var m)) root = m;
            if (root.ValueKind != JsonValueKind.Array)
                throw new QuantPeftException($"--messages: '{path}': expected an array of {{\"role\", \"content\"}} or an object with \"messages\"");
            var messages = new List<ChatMessage>();
            int i = 0;
            foreach (var e in root.EnumerateArray())
            {
                string? role = e.ValueKind == JsonValueKind.Object && e.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
                string? content = e.ValueKind == JsonValueKind.Object && e.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
                if (role is null || content is null || !ChatMessage.Roles.Contains(role))
                    throw new QuantPeftException($"--messages: '{path}': message {i}: expected {{\"role\": system|user|assistant, \"content\": string}}");
                messages.Add(new ChatMessage(role, content));
                i++;
            }
            if (messages.Count == 0) throw new QuantPeftException($"--messages: '{path}': no messages");
            return messages;
        }
    }

    /// <summary>Writes the text of tokens as they come: each call prints what the answer so far adds, holding back an incomplete UTF-8 sequence.</summary>
    internal sealed class StreamingText(ITextTokenizer tokenizer, TextWriter output)
    {
        private readonly List<int> _tokens = [];
        private int _printed;

        public void Add(int token)
        {
            _tokens.Add(token);
            string text = tokenizer.Decode(_tokens.ToArray());
            if (text.EndsWith('\uFFFD')) return;
            if (text.Length > _printed) output.Write(text[_printed..]);
            output.Flush();
            _printed = text.Length;
        }

        /// <summary>Prints whatever is still held back (an answer may end inside a UTF-8 sequence).</summary>
        public void Finish()
        {
            string text = tokenizer.Decode(_tokens.ToArray());
            if (text.Length > _printed) output.Write(text[_printed..]);
            _printed = text.Length;
        }
    }
}
