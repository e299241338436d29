"""Emulators: stand-ins for hardware that cannot exist on a development machine.

They let the real drivers run unchanged, in tests and in rehearsals, against something that speaks the
real wire protocol:

- :mod:`~gipo_robot.hardware.emulators.virtual_bus`: a 6-joint servo arm (MuJoCo joints) on a
  pseudo-terminal, answering Dynamixel 2.0 or Feetech STS packets byte for byte, with injectable faults;
  :class:`~gipo_robot.hardware.serial_bus.SerialArm` opens its ``/dev/pts/N`` like a USB adapter
  (``gipo-robot virtual-arm``); with :mod:`~gipo_robot.hardware.emulators.arm_camera`, it also renders
  camera views of its scene into frame files a robot config reads as cameras (``--camera front``).
- :mod:`~gipo_robot.hardware.emulators.virtual_rosbridge`: a rosbridge v2 websocket server on loopback
  with a simulated arm behind it, for :class:`~gipo_robot.hardware.ros_bridge.RosArm`
  (``gipo-robot virtual-rosbridge``).

No driver imports an emulator; the emulators import only the protocol definitions they share with the
drivers (:mod:`~gipo_robot.hardware.servo_protocol`, the ROS time and type helpers of
:mod:`~gipo_robot.hardware.ros_bridge`, the frame file of :mod:`~gipo_robot.hardware.frame_channel`).
"""
