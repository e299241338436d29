import pytest

from gipo_robot.policies.obs_sets import select_features, sim_camera_options

SIM_STORE = ["robot0_eef_pos", "robot0_gripper_qpos", "object", "agentview_image", "robot0_eye_in_hand_image"]


def test_each_set_selects_what_it_says_from_a_sim_store():
    assert select_features("state", SIM_STORE) == ["object", "robot0_eef_pos", "robot0_gripper_qpos"]
    assert select_features("proprio", SIM_STORE) == ["robot0_eef_pos", "robot0_gripper_qpos"]
    assert select_features("cameras", SIM_STORE) == ["agentview_image", "robot0_eye_in_hand_image"]
    both = select_features("proprio+cameras", SIM_STORE)
    assert "object" not in both and len(both) == 4
    assert select_features("auto", SIM_STORE) == both  # a store with a camera: what a real arm sees
    assert select_features("auto", ["object", "robot0_eef_pos"]) == ["object", "robot0_eef_pos"]


def test_a_set_that_needs_a_camera_on_a_store_without_one_names_the_store():
    with pytest.raises(ValueError, match=r"needs a camera.*lift.zarr"):
        select_features("proprio+cameras", ["robot0_eef_pos", "object"], where="lift.zarr")
    with pytest.raises(ValueError, match=r"unknown observation set 'vision'.*proprio"):
        select_features("vision", SIM_STORE)


def test_the_simulator_renders_the_policys_cameras_at_its_resolution():
    images = {"agentview_image": [3, 64, 64], "robot0_eye_in_hand_image": [3, 64, 64]}
    options = sim_camera_options(images)
    assert options["cameras"] == ("agentview", "robot0_eye_in_hand") and options["image_size"] == 64
    assert sim_camera_options({}) == {}
    with pytest.raises(ValueError, match="square RGB"):
        sim_camera_options({"agentview_image": [3, 64, 48]})
