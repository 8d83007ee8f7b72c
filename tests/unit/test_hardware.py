"""Precision and weight layout follow what the CPU computes natively and what llama.cpp was built with."""

from bot.engines.hardware import cpu_flags, embedder_precision
from bot.engines.llm import llama_cpp_features, llama_model_params, weight_repacking_choice


def test_flags_are_read_from_x86_and_arm_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f\nprocessor\t: 1\nflags\t\t: fpu avx2 avx512_bf16\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    assert {"avx2", "avx512_bf16"} <= cpu_flags(x86)
    assert "bf16" in cpu_flags(arm)


def test_auto_takes_float32_without_native_bfloat16_and_bfloat16_with_it():
    assert embedder_precision("auto", native_bf16=False).dtype == "float32"
    assert embedder_precision("auto", native_bf16=True).dtype == "bfloat16"


def test_an_explicit_setting_wins_and_says_when_it_will_be_slow():
    forced = embedder_precision("bfloat16", native_bf16=False)
    assert forced.dtype == "bfloat16" and "slower" in forced.reason
    assert embedder_precision("float32", native_bf16=True).dtype == "float32"


def test_llama_cpp_built_with_amx_keeps_the_weights_unrepacked_unless_told():
    amx_build = frozenset({"AVX2", "AVX512", "AMX_INT8"})
    assert not weight_repacking_choice("auto", amx_build).on
    assert weight_repacking_choice("auto", frozenset({"AVX2", "FMA"})).on
    assert weight_repacking_choice("on", amx_build).on
    assert not weight_repacking_choice("off", frozenset({"AVX2"})).on


def test_the_installed_llama_cpp_names_its_build_features():
    assert {"AVX", "AVX2", "NEON", "ARM_FMA"} & llama_cpp_features()  # an x86 or an Arm build


def test_model_parameters_llama_cpp_python_takes_no_argument_for_are_set_while_it_loads_and_only_then():
    import llama_cpp.llama_cpp as lib

    assert lib.llama_model_default_params().use_extra_bufts
    with llama_model_params(use_extra_bufts=False):
        assert not lib.llama_model_default_params().use_extra_bufts
    assert lib.llama_model_default_params().use_extra_bufts
