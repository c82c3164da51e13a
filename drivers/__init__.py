"""The only package that talks to hardware: real and simulated devices.

Build every device from configuration with
:func:`drivers.devices.build_devices` and start them; then use
``devices.cameras[name]`` (:class:`~drivers.camera.Camera`),
``devices.document_printer`` (:class:`~drivers.document_printer.DocumentPrinter`),
``devices.receipt_printer`` (:class:`~drivers.receipt_printer.ReceiptPrinter`),
``devices.pins`` (:class:`~drivers.gpio.PinBank`) and ``devices.code_reader``
(:class:`~drivers.code_reader.CodeReader`). Each reports a
:class:`~drivers.health.Health` and the capabilities it provides.

Every call is synchronous and bounded by a timeout; an asyncio caller runs
them with ``asyncio.to_thread``. Callbacks (GPIO edges, health changes) run on
the drivers' own threads.
"""
