import NNCore
import NNPickle
import NNTorch
import Testing

/// Whole pickled models (`torch.save(model)`): torch.nn layers as NEWOBJ + BUILD of their
/// `__dict__`, in the zip layout and the legacy format, and the classes that cannot be read.
struct TorchModelTests {
    func checkModel(_ checkpoint: TorchCheckpoint) throws {
        let model = try checkpoint.module()
        #expect(model.className == "torch.nn.modules.container.Sequential")
        #expect(model.children.map(\.name) == ["0", "1", "2", "3"])
        #expect(model.children.map(\.module.typeName) == ["Linear", "ReLU", "Linear", "BatchNorm1d"])
        #expect(model.training == false)
        let first = model.children[0].module, last = model.children[3].module
        #expect(first.path == "0" && first.int("in_features") == 3 && first.int("out_features") == 2)
        #expect(first.parameters.map(\.name) == ["weight", "bias"])
        #expect(model.children[1].module.bool("inplace") == false)
        #expect(model.children[2].module.parameters.map(\.name) == ["weight", "bias"])
        #expect(model.children[2].module.parameters[1].tensor == nil)  // bias=False
        #expect(last.double("eps") == 1e-5 && last.double("momentum") == 0.1 && last.bool("affine") == false)
        #expect(last.ints("num_features") == [1])
        #expect(last.attribute("_forward_hooks") == .dict([]))
        let expected = try Fixtures.expectedTensors("model")
        let state = model.stateDict()
        #expect(state.map(\.name) == ["0.weight", "0.bias", "2.weight", "3.running_mean", "3.running_var", "3.num_batches_tracked"])
        for t in state { checkTensor(t.tensor, try #require(expected[t.name]), t.name) }
    }

    @Test("A pickled nn.Sequential of Linear, ReLU, Linear without bias and BatchNorm1d")
    func sequential() throws {
        try checkModel(try Fixtures.checkpoint("model", mode: .wholeModel))
    }

    @Test("The same model in the legacy format")
    func sequentialLegacy() throws {
        try checkModel(try TorchLegacyFile.parse(bytes: try Fixtures.bytes("model_legacy.pt"), mode: .wholeModel))
    }

    @Test("A whole model read as a state dict says what it is")
    func wholeModelAsStateDict() throws {
        #expect(torchError { try Fixtures.checkpoint("model") }
            == "the file holds a whole pickled model (torch.nn.modules.container.Sequential), not a state dict; read it as a whole model")
    }

    @Test("A torch.nn layer this reader does not decode is named")
    func unsupportedLayer() throws {
        #expect(torchError { try Fixtures.checkpoint("model_lstm", mode: .wholeModel) }
            == "the model uses torch.nn.modules.rnn.LSTM, which this reader does not decode (nothing was run); it reads Linear, Conv2d, ReLU, Sigmoid, Tanh, GELU, LeakyReLU, ELU, SELU, SiLU, Softplus, Hardsigmoid, ReLU6, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten, Dropout, BatchNorm2d, BatchNorm1d, Softmax, LogSoftmax, Sequential, Identity")
    }

    @Test("A custom class (__main__.Net): its forward() is not in the file", arguments: [TorchCheckpoint.Mode.wholeModel, .stateDict])
    func customClass(_ mode: TorchCheckpoint.Mode) throws {
        #expect(torchError { try Fixtures.checkpoint("custom_net", mode: mode) }
            == "the model is a __main__.Net, a class defined in Python code: its forward() is not in the file, so the model cannot be rebuilt (nothing was run); save model.state_dict() instead and state the architecture")
        // A user's package is recognized too, by its capitalized class name.
        let pickle = bytes([0x80, 2], "cmy_models.nets\nResNetish\n)", [0x81], ".")
        #expect(torchError { try TorchCheckpoint(pickle: pickle, storages: TorchStorageDictionary([:]), mode: mode) }
            == "the model is a my_models.nets.ResNetish, a class defined in Python code: its forward() is not in the file, so the model cannot be rebuilt (nothing was run); save model.state_dict() instead and state the architecture")
    }

    @Test("module() of a state dict, and a module whose state is not a dict")
    func notModules() throws {
        #expect(torchError { try Fixtures.checkpoint("state_dict").module() }
            == "not a pickled torch.nn module: the pickle holds a dict (a state dict?), not a module object; read it as a state dict")
        let linear = PickleValue.global(module: "torch.nn.modules.linear", name: "Linear")
        let checkpoint = try TorchCheckpoint(root: .object(.call(linear, args: []), state: .i(1)), storages: TorchStorageDictionary([:]))
        #expect(torchError { try checkpoint.module() }
            == "not a pickled torch.nn module: the pickle (torch.nn.modules.linear.Linear) has a state that is an int, not a dict")
        #expect(torchError { try checkpoint.stateDict() }
            == "not a state dict: the pickle holds a whole model (torch.nn.modules.linear.Linear); read it as a whole model")
    }

    @Test("The allow-lists: module classes by their defining module; whole models add builtins.set")
    func allowLists() {
        #expect(TorchAllowList.moduleClasses.count == 24)
        #expect(TorchAllowList.moduleClasses.contains("torch.nn.modules.activation.GELU"))
        #expect(TorchAllowList.moduleClasses.contains("torch.nn.modules.pooling.AdaptiveAvgPool2d"))
        #expect(TorchAllowList.wholeModel.allows(module: "builtins", name: "set"))
        #expect(!TorchAllowList.stateDict.allows(module: "builtins", name: "set"))
        #expect(!TorchAllowList.stateDict.allows(module: "torch.nn.modules.linear", name: "Linear"))
        #expect(TorchAllowList.stateDict.allows(module: "torch", name: "BFloat16Storage"))
    }
}
