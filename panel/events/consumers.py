from channels.generic.websocket import AsyncJsonWebsocketConsumer


class TeamConsumer(AsyncJsonWebsocketConsumer):
    pass


class ContainerConsumer(AsyncJsonWebsocketConsumer):
    pass
